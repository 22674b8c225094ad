namespace Slub.XArray;

// Consistency checking and introspection (tests, diagnostics, the CLI demo).
public sealed unsafe partial class XArray
{
    /// <summary>Figures of the tree: nodes, height, entries (multi-index entries once).</summary>
    public readonly record struct TreeInfo(int Nodes, int Height, long Entries);

    /// <summary>
    /// Verifies every structural invariant under the lock — node back-links (parent, offset, array id), counts
    /// and value counts, sibling placement, upward mark aggregation (and the free mark of allocating arrays),
    /// no empty node, no root that should have been shrunk, the leaf directory equal to the tree (every leaf below
    /// its length under its own key, every other entry <see cref="NoLeaf"/>) — and returns the tree's figures.
    /// Thread-safe: takes the array's lock.
    /// </summary>
    /// <exception cref="InvalidOperationException">An invariant does not hold.</exception>
    public TreeInfo Validate()
    {
        lock (_lock)
        {
            ulong head = _head;
            if (_headWalk != PackHead(head)) Fail($"packed head 0x{_headWalk:x} does not match head 0x{head:x}");
            ValidateDirectory();
            if (!XaCodec.IsNode(head))
            {
                if (XaCodec.IsAdvanced(head)) Fail($"head holds {new XaEntry(head)}");
                if (_trackFree && ((_headMarks & 1) != 0) != (head == 0)) Fail("head free mark");
                return new TreeInfo(0, 0, head == 0 ? 0 : 1);
            }
            XaNode* root = (XaNode*)XaCodec.ToNode(head);
            if ((byte*)&root->Slots[0] - (byte*)root != XaNode.SlotsOffset) Fail("XaNode.SlotsOffset does not match the layout");
            if (root->Parent != null) Fail("root has a parent");
            for (int m = 0; m < 3; m++)
                if (((_headMarks >> m) & 1) != (root->Marks[m] != 0 ? 1 : 0)) Fail($"head mark {m} does not aggregate the root");
            if (root->Count == 1 && root->Slots[0] != 0 && (root->Shift == 0 || XaCodec.IsNode(root->Slots[0])))
                Fail("root should have been shrunk");
            int nodes = 0;
            long entries = 0;
            ValidateNode(root, root->Shift, ref nodes, ref entries);
            return new TreeInfo(nodes, root->Shift / XaCodec.ChunkShift + 1, entries);
        }
    }

    private void ValidateNode(XaNode* n, int shift, ref int nodes, ref long entries)
    {
        nodes++;
        if (n->Shift != shift) Fail($"node 0x{(nint)n:x} shift {n->Shift}, expected {shift}");
        if (n->Array != Id) Fail($"node 0x{(nint)n:x} array {n->Array}, expected {Id}");
        if (n->Count == 0) Fail($"empty node 0x{(nint)n:x} left in the tree");
        int count = 0, values = 0;
        for (int i = 0; i < XaCodec.ChunkSize; i++)
        {
            ulong e = n->Slots[i];
            if (e == 0)
            {
                for (int m = 0; m < 3; m++)
                {
                    bool bit = (n->Marks[m] & (1UL << i)) != 0;
                    if (m == 0 && _trackFree) { if (!bit) Fail($"free slot {i} without free mark"); }
                    else if (bit) Fail($"mark {m} on empty slot {i}");
                }
                continue;
            }
            count++;
            if (e == XaCodec.RetryEntry) Fail($"retry entry in a live node at slot {i}");
            if (XaCodec.IsSibling(e))
            {
                int c = XaCodec.SiblingOffset(e);
                if (c >= i) Fail($"sibling at {i} points forward to {c}");
                for (int k = c + 1; k < i; k++) if (n->Slots[k] != e) Fail($"sibling run broken at {k}");
                ulong ce = n->Slots[c];
                if (ce == 0 || XaCodec.IsInternal(ce) && ce != XaCodec.ZeroEntry) Fail($"sibling at {i} of {new XaEntry(ce)}");
                if (XaCodec.IsValue(ce)) values++;
                for (int m = 0; m < 3; m++) if ((n->Marks[m] & (1UL << i)) != 0) Fail($"mark {m} on sibling slot {i}");
                continue;
            }
            if (_trackFree && (n->Marks[0] & (1UL << i)) != 0 && !(n->Shift > 0 && XaCodec.IsNode(e)))
                Fail($"free mark on occupied slot {i}");
            if (n->Shift > 0 && XaCodec.IsNode(e))
            {
                XaNode* c = (XaNode*)XaCodec.ToNode(e);
                if (c->Parent != n || c->Offset != i) Fail($"child at slot {i} has parent 0x{(nint)c->Parent:x} offset {c->Offset}");
                for (int m = 0; m < 3; m++)
                    if (((n->Marks[m] >> i) & 1) != (c->Marks[m] != 0 ? 1UL : 0)) Fail($"mark {m} of slot {i} does not aggregate its child");
                ValidateNode(c, shift - XaCodec.ChunkShift, ref nodes, ref entries);
                continue;
            }
            if (XaCodec.IsAdvanced(e)) Fail($"internal entry {new XaEntry(e)} at slot {i}");
            entries++;
            if (XaCodec.IsValue(e)) values++;
        }
        if (count != n->Count) Fail($"node 0x{(nint)n:x} count {n->Count}, counted {count}");
        if (values != n->NrValues) Fail($"node 0x{(nint)n:x} nr_values {n->NrValues}, counted {values}");
    }

    private static void Fail(string what) => throw new InvalidOperationException("XArray invariant: " + what);

    /// <summary>Shift, count and nr_values of the node whose slot holds <paramref name="index"/>, or null at the head (tests).</summary>
    internal (int Shift, int Count, int NrValues)? NodeInfo(ulong index)
    {
        lock (_lock)
        {
            Walk(index, out var n, out _);
            if (n == null) return null;
            return (n->Shift, n->Count, n->NrValues);
        }
    }

    /// <summary>Every node address in the tree (tests: to migrate them directly).</summary>
    internal List<nint> NodeAddresses()
    {
        var list = new List<nint>();
        lock (_lock)
        {
            if (!XaCodec.IsNode(_head)) return list;
            var stack = new Stack<nint>();
            stack.Push(XaCodec.ToNode(_head));
            while (stack.Count > 0)
            {
                XaNode* n = (XaNode*)stack.Pop();
                list.Add((nint)n);
                if (n->Shift > 0)
                    for (int i = 0; i < XaCodec.ChunkSize; i++)
                        if (XaCodec.IsNode(n->Slots[i])) stack.Push(XaCodec.ToNode(n->Slots[i]));
            }
        }
        return list;
    }

    /// <summary>The raw head word (tests).</summary>
    internal ulong HeadRaw => Volatile.Read(ref _head);
}
