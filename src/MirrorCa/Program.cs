OfflinePki.OpenSsl.OpenSslAcceleration.Enable();
return OfflinePki.MirrorCa.MirrorCaCli.Create().Parse(args).Invoke();
