namespace Slub.XArray;

/// <summary>The three marks (<c>XA_MARK_0..2</c>), and <see cref="Present"/> (<c>XA_PRESENT</c>) for find filters.</summary>
public enum XaMark
{
    /// <summary><c>XA_MARK_0</c>. Reserved in allocating arrays (<see cref="XaFlags.Alloc"/>), where it tracks free indices.</summary>
    Mark0 = 0,
    /// <summary><c>XA_MARK_1</c>.</summary>
    Mark1 = 1,
    /// <summary><c>XA_MARK_2</c>.</summary>
    Mark2 = 2,
    /// <summary>Not a mark: "any present entry" in <see cref="XArray.Find"/> and friends.</summary>
    Present = 8,
}
