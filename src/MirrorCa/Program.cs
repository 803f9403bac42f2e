return OfflinePki.MirrorCa.MirrorCaCli.Create().Parse(args).Invoke();
