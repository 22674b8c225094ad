namespace Slub.XArray;

// The writer side (callers hold _lock): node allocation, growing and shrinking the tree, placing and
// removing (multi-index) entries, mark propagation and node retirement.
public sealed unsafe partial class XArray
{
    /// <summary>
    /// Stores raw <paramref name="entry"/> (0 = erase) as an order-<paramref name="order"/> entry at the aligned
    /// range containing <paramref name="index"/>. If a larger entry already covers that range, it is replaced
    /// whole (keeping its order). <paramref name="old"/> is the raw entry that covered <paramref name="index"/>.
    /// </summary>
    internal XaError StoreCore(ulong index, int order, ulong entry, out ulong old)
    {
        if (order == 0)
        {
            // One walk (the leaf directory's two reads when it names the leaf) finds the old entry and, for the
            // common cases, the slot to write: replacing or erasing an existing entry, filling an empty slot of an
            // existing leaf, or hanging new nodes from an empty interior slot. Everything else (growing the tree,
            // the head) takes the general path below.
            old = WalkLocked(index, out XaNode* w, out int woff, forErase: entry == 0);
            if (w != null)
            {
                if (old != 0)
                {
                    if (entry != 0) ReplaceInPlace(w, woff, entry);   // the whole entry, whatever its order
                    else
                    {
                        ClearRange(w, woff, SiblingCount(w, woff));
                        DeleteIfEmpty(w);
                        ShrinkRoot();
                    }
                    return XaError.None;
                }
                if (entry != 0)
                {
                    if (w->Shift == 0)
                    {
                        PlaceEntry(w, woff, 0, entry);
                        return XaError.None;
                    }
                    // The walk ended on a null slot of an interior node: hang a chain of new nodes there (what the
                    // general path does after walking down again, whose header reads would now miss).
                    return AddChain(w, woff, index, entry);
                }
            }
        }
        else old = LoadLocked(index);
        ulong mask = order == 64 ? ulong.MaxValue : (1UL << order) - 1;
        ulong first = index & ~mask, last = first | mask;
        int s = order - order % XaCodec.ChunkShift;
        int sibs = (1 << (order % XaCodec.ChunkShift)) - 1;
        if (entry == 0)
        {
            EraseRange(first, s, sibs);
            return XaError.None;
        }
        if (!XaCodec.IsNode(_head) && last == 0)
        {
            SetHeadEntry(entry);
            return XaError.None;
        }
        var err = Grow(last, s);
        if (err != XaError.None) { ShrinkRoot(); return err; }
        XaNode* n = (XaNode*)XaCodec.ToNode(_head);
        while (true)
        {
            int off = (int)((first >> n->Shift) & XaCodec.ChunkMask);
            ulong e = n->Slots[off];
            if (XaCodec.IsSibling(e)) { ReplaceInPlace(n, XaCodec.SiblingOffset(e), entry); return XaError.None; }
            if (n->Shift == s)
            {
                if (e != 0 && !XaCodec.IsNode(e) && off + sibs + 1 < XaCodec.ChunkSize
                    && n->Slots[off + sibs + 1] == XaCodec.MkSibling(off))
                {
                    ReplaceInPlace(n, off, entry);   // a larger entry starts here and covers the range
                    return XaError.None;
                }
                PlaceEntry(n, off, sibs, entry);
                return XaError.None;
            }
            if (e != 0 && !XaCodec.IsNode(e)) { ReplaceInPlace(n, off, entry); return XaError.None; }
            if (e == 0)
            {
                XaNode* c = LinkNewChild(n, off, first);
                if (c == null) return XaError.NoMemory;
                e = XaCodec.MkNode((nint)c);
            }
            n = (XaNode*)XaCodec.ToNode(e);
        }
    }

    /// <summary>
    /// Stores order-0 <paramref name="entry"/> at <paramref name="index"/> below the null slot <paramref name="off"/>
    /// of interior node <paramref name="n"/>: one new node per level down to a leaf, each linked as it is made.
    /// </summary>
    private XaError AddChain(XaNode* n, int off, ulong index, ulong entry)
    {
        while (true)
        {
            XaNode* c = LinkNewChild(n, off, index);
            if (c == null) return XaError.NoMemory;
            if (c->Shift == 0)
            {
                PlaceEntry(c, (int)(index & XaCodec.ChunkMask), 0, entry);
                return XaError.None;
            }
            n = c;
            off = (int)((index >> c->Shift) & XaCodec.ChunkMask);
        }
    }

    /// <summary>
    /// Makes an empty child of interior node <paramref name="n"/> covering <paramref name="index"/> and links it
    /// into the null slot <paramref name="off"/> (a new leaf also into the directory). Out of nodes, it deletes
    /// what the store left empty and returns null (the caller reports <see cref="XaError.NoMemory"/>).
    /// </summary>
    private XaNode* LinkNewChild(XaNode* n, int off, ulong index)
    {
        XaNode* c = NewNode(n->Shift - XaCodec.ChunkShift, n, off, index);
        if (c == null)
        {
            DeleteIfEmpty(n);
            ShrinkRoot();
            return null;
        }
        n->Count++;
        XaNode.WriteSlot(n, off, XaCodec.MkNode((nint)c));
        if (c->Shift == 0) LeafLinked(c);
        // Mark bits of the slot need no change: an empty child carries no marks, and in a free-tracking array the
        // slot was free and the child is all free.
        return c;
    }

    /// <summary>Allocates and initialises a node (from the preallocation of the store in progress, if any) to cover <paramref name="index"/>.</summary>
    private XaNode* NewNode(int shift, XaNode* parent, int offset, ulong index)
    {
        XaNode* n = _prealloc;
        if (n != null) { _prealloc = n->Parent; _preallocUsed++; }
        else
        {
            n = (XaNode*)_nodes.Cache.TryAlloc();
            if (n == null) return null;
            _nodes.CountAllocation();
        }
        // Free nodes are in the constructor's state (every slot null; see XaNodeCache): a sparse node touches only
        // the cache lines it uses instead of all nine. Every header field and mark word is written here.
        n->Shift = (byte)shift;
        n->Offset = (byte)offset;
        n->Count = 0;
        n->NrValues = 0;
        n->Parent = parent;
        n->DirKey = shift == 0 ? DirKeyOf(index) : XaNode.NoDirKey;
        n->Marks[0] = _trackFree ? ulong.MaxValue : 0;
        n->Marks[1] = 0;
        n->Marks[2] = 0;
        Volatile.Write(ref n->Array, Id);
        return n;
    }

    /// <summary>Head holds an entry (not a node): replace it.</summary>
    private void SetHeadEntry(ulong entry)
    {
        PublishHead(entry);
        if (entry == 0) _headMarks = _trackFree ? 1 : 0;
        else if (_trackFree) _headMarks &= ~1;
    }

    private int RootMarks(XaNode* root)
    {
        int m = 0;
        for (int i = 0; i < 3; i++) if (root->Marks[i] != 0) m |= 1 << i;
        return m;
    }

    /// <summary>Adds levels on top until the root covers <paramref name="last"/> and sits at shift ≥ <paramref name="minShift"/>.</summary>
    private XaError Grow(ulong last, int minShift)
    {
        ulong head = _head;
        XaNode* root;
        if (!XaCodec.IsNode(head))
        {
            int shift = 0;
            if (head == 0)
            {
                shift = minShift;
                while (shift < XaCodec.MaxShift && (last >> shift) > XaCodec.ChunkMask) shift += XaCodec.ChunkShift;
            }
            root = NewNode(shift, null, 0, 0);
            if (root == null) return XaError.NoMemory;
            if (head != 0)
            {
                root->Slots[0] = head;
                root->Count = 1;
                root->NrValues = (byte)(XaCodec.IsValue(head) ? 1 : 0);
                for (int m = 0; m < 3; m++)
                {
                    ulong w = (_headMarks & (1 << m)) != 0 ? 1UL : 0;
                    if (m == 0 && _trackFree) w = ~1UL;
                    root->Marks[m] = w;
                }
            }
            _headMarks = RootMarks(root);
            PublishHead(XaCodec.MkNode((nint)root));
            if (root->Shift == 0) LeafLinked(root);
        }
        root = (XaNode*)XaCodec.ToNode(_head);
        while (root->Shift < minShift || (root->Shift < XaCodec.MaxShift && (last >> root->Shift) > XaCodec.ChunkMask))
        {
            XaNode* up = NewNode(root->Shift + XaCodec.ChunkShift, null, 0, 0);
            if (up == null) return XaError.NoMemory;
            up->Slots[0] = XaCodec.MkNode((nint)root);
            up->Count = 1;
            for (int m = 0; m < 3; m++)
            {
                ulong w = (_headMarks & (1 << m)) != 0 ? 1UL : 0;
                if (m == 0 && _trackFree) w |= ~1UL;
                up->Marks[m] = w;
            }
            XaNode.WriteParent(root, up);
            _headMarks = RootMarks(up);
            PublishHead(XaCodec.MkNode((nint)up));
            root = up;
        }
        return XaError.None;
    }

    /// <summary>Replaces the entry whose canonical slot is (<paramref name="n"/>, <paramref name="canonical"/>) keeping its order and marks.</summary>
    private void ReplaceInPlace(XaNode* n, int canonical, ulong entry)
    {
        ulong oldEntry = n->Slots[canonical];
        int change = (XaCodec.IsValue(entry) ? 1 : 0) - (XaCodec.IsValue(oldEntry) ? 1 : 0);
        XaNode.WriteSlot(n, canonical, entry);
        // Value for value (or pointer for pointer): the header's line is not touched.
        if (change != 0) n->NrValues = (byte)(n->NrValues + change * (SiblingCount(n, canonical) + 1));
    }

    /// <summary>Puts an entry in slots [off, off+sibs] of <paramref name="n"/>, replacing whole smaller entries and subtrees there.</summary>
    private void PlaceEntry(XaNode* n, int off, int sibs, ulong entry)
    {
        int marks = 0, count = 0, values = 0;
        List<nint>? toFree = null;
        for (int i = off; i <= off + sibs; i++)
        {
            ulong e = n->Slots[i];
            if (_headMarks != 0)   // else nothing in the array is marked: the marks' line is not read
                for (int m = 0; m < 3; m++) if ((n->Marks[m] & (1UL << i)) != 0) marks |= 1 << m;
            if (e == 0) continue;
            count--;
            if (XaCodec.IsValue(e) || (XaCodec.IsSibling(e) && XaCodec.IsValue(n->Slots[XaCodec.SiblingOffset(e)]))) values--;
            if (n->Shift > 0 && XaCodec.IsNode(e)) (toFree ??= new()).Add(XaCodec.ToNode(e));
        }
        count += sibs + 1;
        if (XaCodec.IsValue(entry)) values += sibs + 1;
        if (toFree is not null)
            foreach (var c in toFree) ForgetLeaves((XaNode*)c);   // before the new entry unlinks them
        // Canonical first, then siblings: a reader that resolves a new sibling finds the new entry.
        XaNode.WriteSlot(n, off, entry);
        for (int i = off + 1; i <= off + sibs; i++) XaNode.WriteSlot(n, i, XaCodec.MkSibling(off));
        n->Count = (byte)(n->Count + count);
        n->NrValues = (byte)(n->NrValues + values);
        ulong range = RangeMask(off, sibs);
        for (int m = 0; m < 3; m++)
        {
            if (m == 0 && _trackFree) { ClearMarkBits(n, range, 0); continue; }
            if ((marks & (1 << m)) != 0)
            {
                if (sibs > 0) n->Marks[m] &= ~(range & ~(1UL << off));
                SetMarkUp(n, off, m);
            }
        }
        if (toFree is not null)
            foreach (var c in toFree) FreeSubtree((XaNode*)c);
    }

    private static ulong RangeMask(int off, int sibs) => (sibs == 63 ? ulong.MaxValue : ((1UL << (sibs + 1)) - 1)) << off;

    /// <summary>Erases the aligned range at <paramref name="first"/> of level <paramref name="s"/> and <paramref name="sibs"/>+1 slots.</summary>
    private void EraseRange(ulong first, int s, int sibs)
    {
        ulong head = _head;
        if (!XaCodec.IsNode(head))
        {
            if (first == 0 && head != 0) SetHeadEntry(0);
            return;
        }
        XaNode* n = (XaNode*)XaCodec.ToNode(head);
        if (s > n->Shift)
        {
            // The range is at least as large as the whole tree: either covers it or lies beyond it.
            if (first == 0) DropTree();
            return;
        }
        if ((first >> n->Shift) > XaCodec.ChunkMask) return;
        while (true)
        {
            int off = (int)((first >> n->Shift) & XaCodec.ChunkMask);
            ulong e = n->Slots[off];
            if (XaCodec.IsSibling(e)) { ClearRange(n, XaCodec.SiblingOffset(e), SiblingCount(n, XaCodec.SiblingOffset(e))); break; }
            if (n->Shift == s)
            {
                if (e != 0 && !XaCodec.IsNode(e) && off + sibs + 1 < XaCodec.ChunkSize && n->Slots[off + sibs + 1] == XaCodec.MkSibling(off))
                    ClearRange(n, off, SiblingCount(n, off));
                else
                    ClearRange(n, off, sibs);
                break;
            }
            if (e == 0) return;
            if (!XaCodec.IsNode(e)) { ClearRange(n, off, SiblingCount(n, off)); break; }
            n = (XaNode*)XaCodec.ToNode(e);
        }
        DeleteIfEmpty(n);
        ShrinkRoot();
    }

    /// <summary>Empties slots [off, off+sibs] of <paramref name="n"/>, freeing subtrees and clearing marks.</summary>
    private void ClearRange(XaNode* n, int off, int sibs)
    {
        int count = 0, values = 0;
        for (int i = off + sibs; i >= off; i--)   // siblings before their canonical slot
        {
            ulong e = n->Slots[i];
            if (e == 0) continue;
            count++;
            if (XaCodec.IsValue(e) || (XaCodec.IsSibling(e) && XaCodec.IsValue(n->Slots[XaCodec.SiblingOffset(e)]))) values++;
            bool child = n->Shift > 0 && XaCodec.IsNode(e);
            if (child) ForgetLeaves((XaNode*)XaCodec.ToNode(e));   // before the write that unlinks them
            XaNode.WriteSlot(n, i, 0);
            if (child) FreeSubtree((XaNode*)XaCodec.ToNode(e));
        }
        n->Count = (byte)(n->Count - count);
        n->NrValues = (byte)(n->NrValues - values);
        ulong range = RangeMask(off, sibs);
        for (int m = 0; m < 3; m++)
        {
            if (m == 0 && _trackFree) SetMarkBits(n, range, 0);
            else ClearMarkBits(n, range, m);
        }
    }

    /// <summary>Deletes <paramref name="n"/> and its ancestors while they are empty (<c>xas_delete_node</c>).</summary>
    private void DeleteIfEmpty(XaNode* n)
    {
        while (n != null && n->Count == 0)
        {
            XaNode* parent = n->Parent;
            int off = n->Offset;
            if (n->Shift == 0) ForgetLeaf(n);   // before the unlinking write
            if (parent == null)
            {
                PublishHead(0);
                _headMarks = _trackFree ? 1 : 0;
                RetireNode(n);
                return;
            }
            XaNode.WriteSlot(parent, off, 0);
            parent->Count--;
            for (int m = 0; m < 3; m++)
            {
                if (m == 0 && _trackFree) SetMarkUp(parent, off, 0);
                else ClearMarkBits(parent, 1UL << off, m);
            }
            RetireNode(n);
            n = parent;
        }
    }

    /// <summary>Removes roots that only use slot 0 (<c>xas_shrink</c>).</summary>
    private void ShrinkRoot()
    {
        while (XaCodec.IsNode(_head))
        {
            XaNode* root = (XaNode*)XaCodec.ToNode(_head);
            if (root->Count != 1) return;
            ulong e = root->Slots[0];
            if (e == 0) return;
            bool isNode = root->Shift > 0 && XaCodec.IsNode(e);
            if (!isNode && root->Shift != 0) return;   // an order ≥ 6 entry at 0 cannot live in the head
            int marks = 0;
            for (int m = 0; m < 3; m++) if ((root->Marks[m] & 1) != 0) marks |= 1 << m;
            if (isNode) XaNode.WriteParent(((XaNode*)XaCodec.ToNode(e)), null);
            else ForgetLeaf(root);   // a leaf root whose one entry moves to the head
            _headMarks = marks;
            PublishHead(e);
            RetireNode(root);
        }
    }

    /// <summary>Retires a whole subtree (<c>xas_free_nodes</c>): every node gets retry entries and goes to deferred freeing.</summary>
    private void FreeSubtree(XaNode* top)
    {
        var stack = new Stack<nint>();
        stack.Push((nint)top);
        while (stack.Count > 0)
        {
            XaNode* n = (XaNode*)stack.Pop();
            if (n->Shift > 0)
                for (int i = 0; i < XaCodec.ChunkSize; i++)
                {
                    ulong e = n->Slots[i];
                    if (XaCodec.IsNode(e)) stack.Push(XaCodec.ToNode(e));
                }
            RetireNode(n);
        }
    }

    /// <summary>
    /// Turns every slot of a non-empty node into a retry entry, marks the node retired and hands it to the reclaimer.
    /// An empty node (deleted by <see cref="DeleteIfEmpty"/>) keeps its null slots: a reader still inside it reads
    /// "nothing here", true at the moment the node was unlinked, which lies inside that reader's section; its
    /// parent pointer still leads a forward search back into the tree. Its slots stay null until it is reused.
    /// </summary>
    internal void RetireNode(XaNode* n)
    {
        if (n->Shift == 0) LeafRetired(n);
        if (n->Count != 0)
            for (int i = 0; i < XaCodec.ChunkSize; i++) XaNode.WriteSlot(n, i, XaCodec.RetryEntry);
        Volatile.Write(ref n->Array, XaNode.RetiredArray);
        CountRetirement();
        _nodes.Retire(n);
    }

    // ------------------------------------------------------------------ mark propagation

    /// <summary>Sets mark <paramref name="m"/> on slot (<paramref name="n"/>, <paramref name="off"/>) and upwards until a bit is already set. n == null is the head.</summary>
    private void SetMarkUp(XaNode* n, int off, int m)
    {
        while (true)
        {
            if (n == null) { _headMarks |= 1 << m; return; }
            ulong w = n->Marks[m], bit = 1UL << off;
            if ((w & bit) != 0) return;
            Volatile.Write(ref n->Marks[m], w | bit);
            off = n->Offset;
            n = n->Parent;
        }
    }

    private void SetMarkBits(XaNode* n, ulong bits, int m)
    {
        ulong w = n->Marks[m];
        if ((w & bits) == bits) return;
        Volatile.Write(ref n->Marks[m], w | bits);
        if (w == 0) SetMarkUp(n->Parent, n->Offset, m);
    }

    /// <summary>Clears mark bits of <paramref name="n"/> and, while a node is left with no bit of that mark, its parent's bit.</summary>
    private void ClearMarkBits(XaNode* n, ulong bits, int m)
    {
        // The head's bit aggregates the whole tree: clear, and no node has a bit of this mark to clear.
        if ((_headMarks & (1 << m)) == 0) return;
        while (true)
        {
            if (n == null) { _headMarks &= ~(1 << m); return; }
            ulong w = n->Marks[m];
            if ((w & bits) == 0) return;
            w &= ~bits;
            Volatile.Write(ref n->Marks[m], w);
            if (w != 0) return;
            bits = 1UL << n->Offset;
            n = n->Parent;
        }
    }
}

public sealed unsafe partial class XArray
{
    private int _preallocUsed;

    /// <summary>A store that may take nodes from a cursor's preallocation chain (lock held).</summary>
    internal XaError StoreWith(ulong index, int order, ulong entry, ref XaNode* prealloc, ref int preallocCount, out ulong old)
    {
        _prealloc = prealloc;
        _preallocUsed = 0;
        try
        {
            return StoreCore(index, order, entry, out old);
        }
        finally
        {
            preallocCount -= _preallocUsed;
            prealloc = _prealloc;
            _prealloc = null;
        }
    }

    /// <summary>
    /// Whether <paramref name="n"/> (whose <c>array</c> field names this array) is really in the tree: its
    /// parent's slot, or the head, points at it. Lock held. Preallocated nodes carry the id but fail this.
    /// </summary>
    internal bool IsLinked(XaNode* n)
    {
        ulong me = XaCodec.MkNode((nint)n);
        XaNode* p = n->Parent;
        if (p == null) return _head == me;
        return p->Array == Id && p->Slots[n->Offset] == me;
    }

    /// <summary>
    /// Moves a live node to <paramref name="replacement"/> (lock held): copy, point every child at the copy,
    /// publish the copy in the parent slot (or head), then retire the old node with retry entries in every slot so
    /// lock-free readers still inside it restart instead of re-validating against a stale copy.
    /// </summary>
    internal void MoveNode(XaNode* old, XaNode* replacement)
    {
        Buffer.MemoryCopy(old, replacement, XaNode.Size, XaNode.Size);
        if (replacement->Shift > 0)   // leaves hold user entries only, never children
            for (int i = 0; i < XaCodec.ChunkSize; i++)
            {
                ulong e = replacement->Slots[i];
                if (XaCodec.IsNode(e)) XaNode.WriteParent(((XaNode*)XaCodec.ToNode(e)), replacement);
            }
        ulong me = XaCodec.MkNode((nint)replacement);
        if (old->Parent == null) PublishHead(me);
        else XaNode.WriteSlot(old->Parent, old->Offset, me);
        if (replacement->Shift == 0) LeafLinked(replacement);   // the directory names the copy before the old leaf gets retry entries
        RetireNode(old);
    }
}
