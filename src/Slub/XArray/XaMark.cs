namespace Slub.XArray;

/// <summary>The three marks (<c>XA_MARK_0..2</c>), and <see cref="Present"/> (<c>XA_PRESENT</c>) for find filters.</summary>
public enum XaMark
{
    Mark0 = 0,
    Mark1 = 1,
    Mark2 = 2,
    /// <summary>Not a mark: "any present entry" in <see cref="XArray.Find"/> and friends.</summary>
    Present = 8,
}
