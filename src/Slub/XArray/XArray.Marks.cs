namespace Slub.XArray;

// The three marks: set/clear/get on an index, "any marked" on the array.
public sealed unsafe partial class XArray
{
    private int CheckMark(XaMark mark)
    {
        if (mark is not (XaMark.Mark0 or XaMark.Mark1 or XaMark.Mark2))
            throw new ArgumentOutOfRangeException(nameof(mark), mark, "marks are Mark0..Mark2");
        if (mark == XaMark.Mark0 && _trackFree)
            throw new ArgumentException("mark 0 tracks free indices in an allocating array; use Mark1 or Mark2", nameof(mark));
        return (int)mark;
    }

    /// <summary><c>xa_set_mark</c>: marks the entry at <paramref name="index"/> (all of a multi-index entry). Does nothing if the index is empty. Thread-safe: takes the array's lock.</summary>
    public void SetMark(ulong index, XaMark mark)
    {
        int m = CheckMark(mark);
        lock (_lock)
        {
            CheckWritable();
            ulong e = Walk(index, out var n, out int off);
            if (e == 0) return;
            SetMarkUp(n, off, m);
        }
    }

    /// <summary><c>xa_clear_mark</c>. Thread-safe: takes the array's lock.</summary>
    public void ClearMark(ulong index, XaMark mark)
    {
        int m = CheckMark(mark);
        lock (_lock)
        {
            CheckWritable();
            ulong e = Walk(index, out var n, out int off);
            if (e == 0) return;
            if (n == null) _headMarks &= ~(1 << m);
            else ClearMarkBits(n, 1UL << off, m);
        }
    }

    /// <summary><c>xa_get_mark</c>: whether the entry at <paramref name="index"/> carries the mark. Lock-free.</summary>
    public bool GetMark(ulong index, XaMark mark)
    {
        int m = CheckMark(mark);
        using var rs = _rcu.EnterRead();
        ulong e = Walk(index, out var n, out int off);
        if (e == 0) return false;
        return n == null ? (Volatile.Read(ref _headMarks) & (1 << m)) != 0 : XaNode.MarkBit(n, m, off);
    }

    /// <summary><c>xa_marked</c>: whether any entry carries the mark. Lock-free.</summary>
    public bool Marked(XaMark mark) => (Volatile.Read(ref _headMarks) & (1 << CheckMark(mark))) != 0;

    // Cursor helpers (lock held).
    internal void SetMarkAt(XaNode* n, int off, int m) => SetMarkUp(n, off, m);

    internal void ClearMarkAt(XaNode* n, int off, int m)
    {
        if (n == null) _headMarks &= ~(1 << m);
        else ClearMarkBits(n, 1UL << off, m);
    }

    internal bool GetMarkAt(XaNode* n, int off, int m) =>
        n == null ? (Volatile.Read(ref _headMarks) & (1 << m)) != 0 : XaNode.MarkBit(n, m, off);
}
