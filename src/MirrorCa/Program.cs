// Placeholder: replaced by the MirrorCa host.
return 0;
