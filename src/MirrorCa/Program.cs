// Issue 16 finding 7: every verb (serve, export, import, rebuild-index...) creates its files private (umask 077).
OfflinePki.Hosting.PrivateFiles.Restrict();
OfflinePki.OpenSsl.OpenSslAcceleration.Enable();
return OfflinePki.MirrorCa.MirrorCaCli.Create().Parse(args).Invoke();
