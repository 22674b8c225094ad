namespace Slub.Tests;

/// <summary>
/// A test's own thread whose exception fails the test when it is joined. An exception escaping a raw
/// <see cref="Thread"/> ends the whole test host, and every other test's result with it; here it is kept and
/// rethrown by <see cref="Join()"/> on the test's thread instead.
/// </summary>
internal sealed class GuardedThread
{
    private readonly Thread _thread;
    private Exception? _failure;

    public GuardedThread(Action body) =>
        _thread = new Thread(() =>
        {
            try { body(); }
            catch (Exception e) { _failure = e; }
        });

    public bool IsBackground { get => _thread.IsBackground; set => _thread.IsBackground = value; }

    public bool IsAlive => _thread.IsAlive;

    public void Start() => _thread.Start();

    /// <summary>Waits for the thread; rethrows (wrapped) what escaped its body.</summary>
    public void Join()
    {
        _thread.Join();
        ThrowIfFailed();
    }

    /// <summary>Waits up to <paramref name="timeout"/>; true if it ended (then rethrows what escaped its body).</summary>
    public bool Join(TimeSpan timeout)
    {
        if (!_thread.Join(timeout)) return false;
        ThrowIfFailed();
        return true;
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } e) throw new Xunit.Sdk.XunitException($"a test thread failed: {e}");
    }
}
