namespace Slub;

// Per-cache state of background ("active") defragmentation.
public sealed partial class KmemCache
{
    private ActiveDefragSettings _activeDefrag = ActiveDefragSettings.Default;
    private int _activeDefragRunning;

    /// <summary>The background defragmenter's knobs for this cache. Setting validates the whole set first.</summary>
    /// <exception cref="ArgumentException">The set is inconsistent (for example stop above lower); nothing changes.</exception>
    public ActiveDefragSettings ActiveDefrag
    {
        get => Volatile.Read(ref _activeDefrag);
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Problem() is { } problem) throw new ArgumentException($"{Name}: {problem}", nameof(value));
            Volatile.Write(ref _activeDefrag, value);
        }
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the current settings atomically (retrying if another writer got
    /// in between). Returns the problem text and changes nothing when the result is inconsistent.
    /// </summary>
    internal string? UpdateActiveDefrag(Func<ActiveDefragSettings, ActiveDefragSettings> change)
    {
        while (true)
        {
            var current = Volatile.Read(ref _activeDefrag);
            var next = change(current);
            if (next.Problem() is { } problem) return problem;
            if (ReferenceEquals(Interlocked.CompareExchange(ref _activeDefrag, next, current), current)) return null;
        }
    }

    /// <summary>True while the background defragmenter is working on this cache (attribute <c>active_defrag_running</c>).</summary>
    public bool ActiveDefragRunning
    {
        get => Volatile.Read(ref _activeDefragRunning) != 0;
        internal set => Volatile.Write(ref _activeDefragRunning, value ? 1 : 0);
    }
}
