using System.Security.Cryptography;
using Google.Protobuf;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;

namespace OfflinePki.Fuzz;

/// <summary>
/// One journal entry record: protobuf <see cref="JournalEntry"/>, its typed payload (<see cref="JournalCodec.PayloadParser"/>),
/// its hash (<see cref="JournalCodec.ComputeHash(JournalEntry)"/>), its time and head, and a certificate payload's DER parts.
/// </summary>
internal sealed class JournalCodecTarget : FuzzTarget
{
    public override string Name => "journal-codec";

    public override void Run(byte[] data)
    {
        JournalEntry entry;
        try
        {
            entry = JournalEntry.Parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException)
        {
            return;
        }

        IMessage? payload = null;
        try
        {
            payload = JournalCodec.PayloadParser(entry.Type)?.ParseFrom(entry.Payload);
        }
        catch (InvalidProtocolBufferException)
        {
        }

        if (entry.PrevHash.Length == JournalCodec.HashSize)
        {
            _ = JournalCodec.ComputeHash(entry);
            _ = JournalCodec.HeadOf(entry);
        }
        else
        {
            try
            {
                _ = JournalCodec.ComputeHash(entry);
                throw new InvalidOperationException("ComputeHash accepted a prev_hash of " + entry.PrevHash.Length + " bytes");
            }
            catch (ArgumentException)
            {
            }
        }

        try
        {
            _ = JournalCodec.FromUnixMicros(entry.TimeUnixMicros);
        }
        catch (ArgumentOutOfRangeException)
        {
        }

        if (payload is CertificateIssued issued)
        {
            try
            {
                _ = DerCertificateParts.Parse(issued.Certificate.Memory);
            }
            catch (CryptographicException)
            {
            }
        }
    }
}
