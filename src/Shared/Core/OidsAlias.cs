// System.Security.Cryptography.Pkcs brings an internal System.Security.Cryptography.Oids that XML-doc crefs can bind to
// in files that import System.Security.Cryptography; this alias makes "Oids" mean ours everywhere in this assembly.
global using Oids = OfflinePki.Asn1.Oids;
