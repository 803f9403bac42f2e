using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Text;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using OfflinePki.Asn1;

namespace OfflinePki.Keys.Pkcs11;

/// <summary>
/// Token set-up through PKCS#11 (the operations an operator would otherwise do with softhsm2-util and pkcs11-tool,
/// whose PIN options put PINs on a command line): a token initialised in a free slot (<c>C_InitToken</c>, then
/// <c>C_Login</c> as SO and <c>C_InitPIN</c>), an EC key pair generated in the token (<c>C_GenerateKeyPair</c>,
/// private half sensitive and never extractable), and an EC private key imported with its public half
/// (<c>C_CreateObject</c>, same CKA_ID). PINs come in as bytes from files or memory and are zeroed by the caller.
/// </summary>
public sealed class TokenAdministration
{
    private readonly Pkcs11Module _module;
    private readonly string _configKey;

    /// <summary>Administers tokens of <paramref name="modulePath"/>.</summary>
    /// <param name="configKey">Names the operation in errors (e.g. "ceremony").</param>
    /// <param name="modulePath">The PKCS#11 module.</param>
    /// <exception cref="SigningKeyUnavailableException">The module is driven by the OpenSSL engine in this process.</exception>
    public TokenAdministration(string configKey, string modulePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(configKey);
        _configKey = configKey;
        _module = Pkcs11Module.For(configKey, modulePath);
    }

    /// <summary>The labels of the initialised tokens present in the module.</summary>
    /// <exception cref="SigningKeyUnavailableException">The module cannot be loaded or initialised.</exception>
    public IReadOnlyList<string> TokenLabels()
    {
        var library = _module.Library(_configKey);
        return library.GetSlotList(SlotsType.WithTokenPresent).Select(s => s.GetTokenInfo())
            .Where(t => t.TokenFlags.TokenInitialized).Select(t => t.Label).ToList();
    }

    /// <summary>
    /// Initialises a token labelled <paramref name="label"/> in the first slot whose token is not initialised, sets its
    /// user PIN, then re-initialises the module so that the new token (and, for SoftHSM2, a new free slot) is seen.
    /// </summary>
    /// <param name="label">Token label, 1 to 32 UTF-8 octets.</param>
    /// <param name="soPin">Security officer PIN (UTF-8).</param>
    /// <param name="userPin">User PIN (UTF-8).</param>
    /// <exception cref="ArgumentException">The label is empty or longer than 32 octets.</exception>
    /// <exception cref="InvalidOperationException">A token with that label exists already, or no slot is free; nothing is changed.</exception>
    /// <exception cref="SigningKeyUnavailableException">The module refuses (the CKR code is named).</exception>
    public void InitToken(string label, byte[] soPin, byte[] userPin)
    {
        ArgumentException.ThrowIfNullOrEmpty(label);
        ArgumentNullException.ThrowIfNull(soPin);
        ArgumentNullException.ThrowIfNull(userPin);
        byte[] padded = Encoding.UTF8.GetBytes(label);
        if (padded.Length > 32)
        {
            throw new ArgumentException($"token label '{label}' is longer than 32 octets", nameof(label));
        }

        if (TokenLabels().Contains(label, StringComparer.Ordinal))
        {
            throw new InvalidOperationException($"{_configKey}: a token labelled '{label}' exists already; refusing to initialise it again");
        }

        var library = _module.Library(_configKey);
        var slot = library.GetSlotList(SlotsType.WithTokenPresent).FirstOrDefault(s => !s.GetTokenInfo().TokenFlags.TokenInitialized)
            ?? throw new InvalidOperationException($"{_configKey}: module '{_module.ModulePath}' has no free slot for token '{label}'");
        byte[] label32 = new byte[32];
        label32.AsSpan().Fill((byte)' ');
        padded.CopyTo(label32, 0);
        Call("C_InitToken", () => slot.InitToken(soPin, label32));
        using (var session = slot.OpenSession(SessionType.ReadWrite))
        {
            Call("C_Login (SO)", () => session.Login(CKU.CKU_SO, soPin));
            Call("C_InitPIN", () => session.InitPin(userPin));
            session.Logout();
        }

        _module.Reset(_module.Generation);
    }

    /// <summary>Generates an EC key pair in token <paramref name="token"/>: private key sensitive, not extractable, sign only.</summary>
    /// <param name="token">Token label.</param>
    /// <param name="userPin">Reads the user PIN.</param>
    /// <param name="label">CKA_LABEL of both halves.</param>
    /// <param name="id">CKA_ID of both halves (non-empty).</param>
    /// <param name="curveOid">Named curve: <c>Secp256r1</c> or <c>Secp384r1</c>.</param>
    /// <exception cref="InvalidOperationException">A private key with that label or id exists already in the token.</exception>
    /// <exception cref="SigningKeyUnavailableException">Token missing or locked, PIN refused, or the module refuses.</exception>
    public void GenerateEcKeyPair(string token, Func<byte[]> userPin, string label, byte[] id, string curveOid)
    {
        ArgumentException.ThrowIfNullOrEmpty(label);
        ArgumentNullException.ThrowIfNull(id);
        ArgumentException.ThrowIfNullOrEmpty(curveOid);
        WithSession(token, userPin, label, id, session =>
        {
            var f = _module.Factories.ObjectAttributeFactory;
            byte[] parameters = CurveParameters(curveOid);
            var publicTemplate = new List<IObjectAttribute>
            {
                f.Create(CKA.CKA_TOKEN, true), f.Create(CKA.CKA_PRIVATE, false), f.Create(CKA.CKA_VERIFY, true),
                f.Create(CKA.CKA_LABEL, label), f.Create(CKA.CKA_ID, id), f.Create(CKA.CKA_EC_PARAMS, parameters),
            };
            var privateTemplate = new List<IObjectAttribute>
            {
                f.Create(CKA.CKA_TOKEN, true), f.Create(CKA.CKA_PRIVATE, true), f.Create(CKA.CKA_SENSITIVE, true),
                f.Create(CKA.CKA_EXTRACTABLE, false), f.Create(CKA.CKA_SIGN, true), f.Create(CKA.CKA_LABEL, label), f.Create(CKA.CKA_ID, id),
            };
            using var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_EC_KEY_PAIR_GEN);
            Call("C_GenerateKeyPair", () => session.GenerateKeyPair(mechanism, publicTemplate, privateTemplate, out _, out _));
        });
    }

    /// <summary>
    /// Imports an EC private key (sensitive, not extractable, sign only) and its public key object with the same CKA_ID.
    /// </summary>
    /// <param name="token">Token label.</param>
    /// <param name="userPin">Reads the user PIN.</param>
    /// <param name="label">CKA_LABEL of both objects.</param>
    /// <param name="id">CKA_ID of both objects (non-empty).</param>
    /// <param name="key">The key with its private part (P-256 or P-384).</param>
    /// <exception cref="InvalidOperationException">A private key with that label or id exists already in the token.</exception>
    /// <exception cref="SigningKeyUnavailableException">Token missing or locked, PIN refused, or the module refuses.</exception>
    public void ImportEcKey(string token, Func<byte[]> userPin, string label, byte[] id, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var p = key.ExportParameters(includePrivateParameters: true);
        try
        {
            string curve = p.Curve.Oid.Value ?? throw new ArgumentException("the key is not on a named curve", nameof(key));
            WithSession(token, userPin, label, id, session =>
            {
                var f = _module.Factories.ObjectAttributeFactory;
                byte[] parameters = CurveParameters(curve);
                byte[] point = [0x04, .. p.Q.X!, .. p.Q.Y!];
                var w = new AsnWriter(AsnEncodingRules.DER);
                w.WriteOctetString(point); // CKA_EC_POINT: DER OCTET STRING of the uncompressed point (PKCS#11 v2.40 §2.3.3)
                Call("C_CreateObject (private key)", () => session.CreateObject(
                [
                    f.Create(CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY), f.Create(CKA.CKA_KEY_TYPE, CKK.CKK_EC), f.Create(CKA.CKA_TOKEN, true),
                    f.Create(CKA.CKA_PRIVATE, true), f.Create(CKA.CKA_SENSITIVE, true), f.Create(CKA.CKA_EXTRACTABLE, false),
                    f.Create(CKA.CKA_SIGN, true), f.Create(CKA.CKA_LABEL, label), f.Create(CKA.CKA_ID, id),
                    f.Create(CKA.CKA_EC_PARAMS, parameters), f.Create(CKA.CKA_VALUE, p.D!),
                ]));
                Call("C_CreateObject (public key)", () => session.CreateObject(
                [
                    f.Create(CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), f.Create(CKA.CKA_KEY_TYPE, CKK.CKK_EC), f.Create(CKA.CKA_TOKEN, true),
                    f.Create(CKA.CKA_PRIVATE, false), f.Create(CKA.CKA_VERIFY, true), f.Create(CKA.CKA_LABEL, label), f.Create(CKA.CKA_ID, id),
                    f.Create(CKA.CKA_EC_PARAMS, parameters), f.Create(CKA.CKA_EC_POINT, w.Encode()),
                ]));
            });
        }
        finally
        {
            CryptographicOperations.ZeroMemory(p.D);
        }
    }

    /// <summary>DER namedCurve OID for CKA_EC_PARAMS (RFC 5480 §2.1.1).</summary>
    private static byte[] CurveParameters(string curveOid)
    {
        if (curveOid is not (Oids.Secp256r1 or Oids.Secp384r1))
        {
            throw new ArgumentException($"curve {curveOid} is not P-256 ({Oids.Secp256r1}) or P-384 ({Oids.Secp384r1})", nameof(curveOid));
        }

        var w = new AsnWriter(AsnEncodingRules.DER);
        w.WriteObjectIdentifier(curveOid);
        return w.Encode();
    }

    private void WithSession(string token, Func<byte[]> userPin, string label, byte[] id, Action<ISession> action)
    {
        ArgumentException.ThrowIfNullOrEmpty(token);
        ArgumentNullException.ThrowIfNull(userPin);
        ArgumentException.ThrowIfNullOrEmpty(label);
        if (id is null || id.Length == 0)
        {
            throw new ArgumentException("CKA_ID must not be empty", nameof(id));
        }

        var sessions = _module.Token(_configKey, "pkcs11:token=" + token, token, userPin);
        _module.Use(sessions.Generation, () =>
        {
            using var session = sessions.Slot.OpenSession(SessionType.ReadWrite);
            var f = _module.Factories.ObjectAttributeFactory;
            foreach (var match in new[] { f.Create(CKA.CKA_LABEL, label), f.Create(CKA.CKA_ID, id) })
            {
                if (session.FindAllObjects([f.Create(CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY), match]).Count > 0)
                {
                    throw new InvalidOperationException($"{_configKey}: token '{token}' already holds a private key with that {(match.Type == (ulong)CKA.CKA_ID ? "id" : "label")} ('{label}'); refusing to add another");
                }
            }

            action(session);
            return 0;
        });
    }

    private void Call(string function, Action action)
    {
        try
        {
            action();
        }
        catch (Pkcs11Exception ex)
        {
            throw new SigningKeyUnavailableException($"{_configKey}: {function} returned {Pkcs11Errors.Name(ex.RV)} (module '{_module.ModulePath}')", ex);
        }
    }
}
