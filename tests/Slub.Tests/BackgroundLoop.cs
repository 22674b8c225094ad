namespace Slub.Tests;

/// <summary>
/// A dedicated thread that repeats an action (a shrink, a defrag pass…) with the round number until disposed,
/// for stress tests that run it beside worker threads. <see cref="Started"/> is set once the thread runs, so
/// workers that wait for it really overlap with it. Dispose stops it and rethrows what it threw.
/// </summary>
internal sealed class BackgroundLoop : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;
    private int _rounds;

    public ManualResetEventSlim Started { get; } = new();

    /// <summary>Rounds begun so far.</summary>
    public int Rounds => Volatile.Read(ref _rounds);

    public BackgroundLoop(Action<int> round)
    {
        _task = Task.Factory.StartNew(() =>
        {
            Started.Set();
            while (!_stop.IsCancellationRequested) round(Interlocked.Increment(ref _rounds) - 1);
        }, TaskCreationOptions.LongRunning);
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _task.Wait(); }
        finally
        {
            _stop.Dispose();
            Started.Dispose();
        }
    }
}
