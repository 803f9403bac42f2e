using System.Collections.Concurrent;
using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace OfflinePki.Keys.Pkcs11;

/// <summary>
/// One PKCS#11 module (.so) of this process, driven through Pkcs11Interop: the application owns its lifecycle
/// (<c>C_Initialize</c> with OS locking, <c>C_Finalize</c>), its tokens' login state and a session pool per token.
/// <para>
/// Lifecycle: loaded and initialised on first use. <see cref="Reset"/> closes every session, finalises the module
/// and bumps <see cref="Generation"/>; the next use initialises it again, so the module rescans its tokens (SoftHSM2
/// does not notice a token store that comes back otherwise). Keys remember the generation they were opened under and
/// reopen themselves after a reset. A reset waits for signatures in flight (a reader/writer lock), so no session is
/// used after it was closed and no call reaches a finalised module.
/// </para>
/// <para>
/// Tokens: before the first login of a generation the token is found by label through <c>C_GetSlotList</c> and
/// <c>C_GetTokenInfo</c>: absent is "not present", and <c>CKF_USER_PIN_LOCKED</c> (PKCS#11 v2.40 §5.5) is refused
/// without a login attempt, so a retrying daemon cannot make a lockout worse. A login session is kept open for the
/// generation (PKCS#11 login state belongs to the application and ends with its last session); signing sessions are
/// taken from a pool, each used by one thread at a time. A PIN the token refused (<c>CKR_PIN_INCORRECT</c>) is
/// remembered by its HMAC and not presented again for <see cref="RefusedPinHold"/>.
/// </para>
/// </summary>
public sealed class Pkcs11Module
{
    private static readonly Lock RegistryGate = new();
    private static readonly Dictionary<string, Pkcs11Module> Modules = new(StringComparer.Ordinal);

    /// <summary>Per-process key for remembering a refused PIN by its HMAC (the PIN itself is never kept).</summary>
    private static readonly byte[] PinMacKey = RandomNumberGenerator.GetBytes(32);

    private readonly Lock _gate = new();
    private readonly ReaderWriterLockSlim _use = new(LockRecursionPolicy.NoRecursion);
    private readonly Pkcs11InteropFactories _factories = new();
    private readonly Dictionary<string, Pkcs11TokenSessions> _tokens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (byte[] Mac, DateTimeOffset At)> _refusedPins = new(StringComparer.Ordinal);
    private IPkcs11Library? _library;
    private long _generation;

    private Pkcs11Module(string path) => ModulePath = path;

    /// <summary>
    /// How long a PIN the token refused (CKR_PIN_INCORRECT) is not presented again (default 10 min): a daemon retrying
    /// every few seconds with a stale PIN file would otherwise use up the token's lockout counter. A different PIN (the
    /// PIN source was corrected) is tried at once.
    /// </summary>
    public static TimeSpan RefusedPinHold { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Clock for <see cref="RefusedPinHold"/> (tests inject one).</summary>
    public static TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>The module path as configured.</summary>
    public string ModulePath { get; }

    /// <summary>Bumped by every <see cref="Reset"/>; handles and sessions of an older generation are dead.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>The object factories (attributes, mechanisms) of this module.</summary>
    public Pkcs11InteropFactories Factories => _factories;

    /// <summary>The process's module object for <paramref name="modulePath"/>, claimed for the signing stack.</summary>
    /// <param name="configKey">The key opening it, for errors.</param>
    /// <param name="modulePath">The module (.so) path.</param>
    /// <exception cref="SigningKeyUnavailableException">The module is driven by the OpenSSL engine in this process (see <see cref="Pkcs11ModuleClaims"/>).</exception>
    public static Pkcs11Module For(string configKey, string modulePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(configKey);
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        Pkcs11ModuleClaims.Claim(configKey, modulePath, Pkcs11ModuleClaims.SigningStack);
        lock (RegistryGate)
        {
            if (!Modules.TryGetValue(modulePath, out var module))
            {
                module = new Pkcs11Module(modulePath);
                Modules[modulePath] = module;
            }

            return module;
        }
    }

    /// <summary>Finalises <paramref name="modulePath"/> if this process has it initialised (its file is gone: every key fails closed and reopens once it is back).</summary>
    /// <param name="modulePath">The module path as configured.</param>
    public static void FinaliseIfLoaded(string modulePath)
    {
        Pkcs11Module? module;
        lock (RegistryGate)
        {
            _ = Modules.TryGetValue(modulePath, out module);
        }

        module?.Reset(module.Generation);
    }

    /// <summary>
    /// The session pool of token <paramref name="tokenLabel"/> in the current generation, logged in as the user:
    /// initialises the module, finds the token, checks its flags and logs in if this generation has not yet.
    /// </summary>
    /// <param name="configKey">Names the key in errors (e.g. "FactoryCa:IssuingCa:Key").</param>
    /// <param name="uri">The key's URI, for errors.</param>
    /// <param name="tokenLabel">CKA token label (RFC 7512 <c>token</c>).</param>
    /// <param name="pin">Reads the user PIN (UTF-8); called only when a login is needed; the bytes are zeroed after use.</param>
    /// <exception cref="SigningKeyUnavailableException">Module file missing, not loadable or not initialisable; token not
    /// present or locked; PIN source unreadable; login refused. The message names <paramref name="configKey"/>, never the PIN.</exception>
    internal Pkcs11TokenSessions Token(string configKey, string uri, string tokenLabel, Func<byte[]> pin)
    {
        lock (_gate)
        {
            var library = EnsureLibrary(configKey, uri);
            if (_tokens.TryGetValue(tokenLabel, out var open))
            {
                return open;
            }

            ISlot slot = FindSlot(configKey, uri, library, tokenLabel, out ITokenInfo info);
            if (info.TokenFlags.UserPinLocked)
            {
                throw new SigningKeyUnavailableException(
                    $"{configKey}: PKCS#11 key '{uri}' unavailable: token '{tokenLabel}' reports its user PIN locked (CKF_USER_PIN_LOCKED); no login attempted; the security officer must unlock it (C_InitPIN), then the key reopens on its own");
            }

            byte[] secret;
            try
            {
                secret = pin();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                throw new SigningKeyUnavailableException($"{configKey}: PIN source cannot be read: {ex.Message}", ex);
            }

            ISession login;
            try
            {
                byte[] mac = HMACSHA256.HashData(PinMacKey, secret);
                if (_refusedPins.TryGetValue(tokenLabel, out var refused) && CryptographicOperations.FixedTimeEquals(refused.Mac, mac)
                    && Time.GetUtcNow() - refused.At < RefusedPinHold)
                {
                    throw new SigningKeyUnavailableException(
                        $"{configKey}: PKCS#11 key '{uri}' unavailable: PIN refused by the token (CKR_PIN_INCORRECT) at {refused.At:u}; the same PIN is not tried again "
                        + $"before {refused.At + RefusedPinHold:u} so that retries cannot lock the token; correct the PIN source and the new PIN is tried at once");
                }

                login = OpenSession(configKey, uri, slot);
                try
                {
                    login.Login(CKU.CKU_USER, secret);
                }
                catch (Pkcs11Exception ex) when (ex.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
                {
                    // Another session of this application logged in already: the state is shared.
                }
                catch (Pkcs11Exception ex)
                {
                    CloseQuietly(login);
                    if (ex.RV == CKR.CKR_PIN_INCORRECT)
                    {
                        _refusedPins[tokenLabel] = (mac, Time.GetUtcNow());
                    }

                    string counter = PinCounter(slot);
                    throw new SigningKeyUnavailableException($"{configKey}: PKCS#11 key '{uri}' cannot be opened ({Pkcs11Errors.DescribeLogin(ex.RV)}){counter}", ex);
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(secret);
            }

            _ = _refusedPins.Remove(tokenLabel);
            var sessions = new Pkcs11TokenSessions(this, slot, login, _generation);
            _tokens[tokenLabel] = sessions;
            return sessions;
        }
    }

    /// <summary>
    /// Closes every session, finalises the module and bumps <see cref="Generation"/>, unless another caller already did
    /// so since <paramref name="observedGeneration"/>. Waits for signatures in flight.
    /// </summary>
    /// <param name="observedGeneration">The generation the caller saw fail.</param>
    public void Reset(long observedGeneration)
    {
        lock (_gate)
        {
            if (_generation != observedGeneration)
            {
                return;
            }

            _use.EnterWriteLock();
            try
            {
                foreach (var t in _tokens.Values)
                {
                    t.CloseAll();
                }

                _tokens.Clear();
                if (_library is not null)
                {
                    try
                    {
                        _library.Dispose(); // C_Finalize, then the library is unloaded
                    }
                    catch (Pkcs11Exception)
                    {
                        // A module whose device is gone may fail C_Finalize: it is dropped all the same.
                    }

                    _library = null;
                }

                _ = Interlocked.Increment(ref _generation);
            }
            finally
            {
                _use.ExitWriteLock();
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="operation"/> while the module cannot be reset under it; throws <see cref="Pkcs11Exception"/>
    /// (<c>CKR_CRYPTOKI_NOT_INITIALIZED</c>) when the module was reset since <paramref name="generation"/>.
    /// </summary>
    internal T Use<T>(long generation, Func<T> operation)
    {
        _use.EnterReadLock();
        try
        {
            if (Interlocked.Read(ref _generation) != generation)
            {
                throw new Pkcs11Exception("module reset", CKR.CKR_CRYPTOKI_NOT_INITIALIZED);
            }

            return operation();
        }
        finally
        {
            _use.ExitReadLock();
        }
    }

    /// <summary>The loaded library of the current generation, initialised (for the key ceremony's token set-up).</summary>
    /// <exception cref="SigningKeyUnavailableException">The module cannot be loaded or initialised.</exception>
    internal IPkcs11Library Library(string configKey) { lock (_gate) { return EnsureLibrary(configKey, ModulePath); } }

    internal ISession OpenSession(string configKey, string uri, ISlot slot)
    {
        try
        {
            return slot.OpenSession(SessionType.ReadWrite);
        }
        catch (Pkcs11Exception ex)
        {
            throw new SigningKeyUnavailableException($"{configKey}: PKCS#11 key '{uri}' unavailable: C_OpenSession returned {Pkcs11Errors.Name(ex.RV)}", ex);
        }
    }

    internal static void CloseQuietly(ISession session)
    {
        try
        {
            session.CloseSession();
        }
        catch (Pkcs11Exception)
        {
            // Already gone with its token or module.
        }
    }

    private IPkcs11Library EnsureLibrary(string configKey, string uri)
    {
        if (_library is not null)
        {
            return _library;
        }

        if (!File.Exists(ModulePath))
        {
            throw new SigningKeyUnavailableException(
                $"{configKey}:Module: PKCS#11 module '{ModulePath}' not found (moved away or uninstalled); the key stays unavailable until the file is back");
        }

        Pkcs11Errors.EnsureNativeResolver();
        try
        {
            _library = _factories.Pkcs11LibraryFactory.LoadPkcs11Library(_factories, ModulePath, AppType.MultiThreaded);
            return _library;
        }
        catch (Pkcs11Exception ex)
        {
            throw new SigningKeyUnavailableException(
                $"{configKey}: PKCS#11 key '{uri}' unavailable: module '{ModulePath}' cannot be initialised ({ex.Method} returned {Pkcs11Errors.Name(ex.RV)}): its token store or device is unreachable (token removed?)", ex);
        }
        catch (Exception ex) when (ex is UnmanagedException or DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
        {
            throw new SigningKeyUnavailableException($"{configKey}:Module: PKCS#11 module '{ModulePath}' cannot be loaded (not a PKCS#11 shared library for this platform?): {ex.Message}", ex);
        }
    }

    private ISlot FindSlot(string configKey, string uri, IPkcs11Library library, string tokenLabel, out ITokenInfo info)
    {
        List<ISlot> slots;
        try
        {
            slots = library.GetSlotList(SlotsType.WithTokenPresent);
        }
        catch (Pkcs11Exception ex)
        {
            throw new SigningKeyUnavailableException($"{configKey}: PKCS#11 key '{uri}' unavailable: the module cannot list its slots (C_GetSlotList returned {Pkcs11Errors.Name(ex.RV)})", ex);
        }

        foreach (var slot in slots)
        {
            ITokenInfo candidate;
            try
            {
                candidate = slot.GetTokenInfo();
            }
            catch (Pkcs11Exception)
            {
                continue; // removed between the two calls
            }

            if (string.Equals(candidate.Label, tokenLabel, StringComparison.Ordinal))
            {
                info = candidate;
                return slot;
            }
        }

        throw new SigningKeyUnavailableException($"{configKey}: PKCS#11 key '{uri}' unavailable: token '{tokenLabel}' is not present in module '{ModulePath}'");
    }

    private static string PinCounter(ISlot slot)
    {
        try
        {
            var f = slot.GetTokenInfo().TokenFlags;
            return f.UserPinLocked ? "; the token now reports its user PIN locked (CKF_USER_PIN_LOCKED)"
                : f.UserPinFinalTry ? "; the token reports one try left (CKF_USER_PIN_FINAL_TRY)"
                : f.UserPinCountLow ? "; the token reports a wrong PIN was entered (CKF_USER_PIN_COUNT_LOW)"
                : string.Empty;
        }
        catch (Pkcs11Exception)
        {
            return string.Empty;
        }
    }
}

/// <summary>
/// The sessions of one token in one module generation: the login session (kept open so the login lasts) and a pool of
/// signing sessions. A rented session belongs to one thread until it is returned or discarded.
/// </summary>
internal sealed class Pkcs11TokenSessions
{
    private readonly Pkcs11Module _module;
    private readonly ISession _login;
    private readonly ConcurrentBag<ISession> _idle = [];
    private readonly ConcurrentDictionary<ISession, byte> _all = new();

    internal Pkcs11TokenSessions(Pkcs11Module module, ISlot slot, ISession login, long generation)
    {
        _module = module;
        Slot = slot;
        _login = login;
        Generation = generation;
    }

    /// <summary>The token's slot.</summary>
    public ISlot Slot { get; }

    /// <summary>The module generation these sessions belong to.</summary>
    public long Generation { get; }

    /// <summary>The module.</summary>
    public Pkcs11Module Module => _module;

    /// <summary>An idle session, or a new one (<c>C_OpenSession</c>, already logged in through the login session).</summary>
    public ISession Rent()
    {
        if (_idle.TryTake(out var s))
        {
            return s;
        }

        s = Slot.OpenSession(SessionType.ReadOnly);
        _all[s] = 0;
        return s;
    }

    /// <summary>Gives a healthy session back to the pool.</summary>
    public void Return(ISession session) => _idle.Add(session);

    /// <summary>Closes a session that failed (it is not reused).</summary>
    public void Discard(ISession session)
    {
        _ = _all.TryRemove(session, out _);
        Pkcs11Module.CloseQuietly(session);
    }

    /// <summary>Closes every session (module reset; called with no signature in flight).</summary>
    public void CloseAll()
    {
        foreach (var s in _all.Keys)
        {
            Pkcs11Module.CloseQuietly(s);
        }

        _all.Clear();
        _idle.Clear();
        Pkcs11Module.CloseQuietly(_login);
    }
}
