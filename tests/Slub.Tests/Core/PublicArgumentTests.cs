namespace Slub.Tests.Core;

/// <summary>Public entry points refuse a null or negative argument with the argument exception naming it.</summary>
public class PublicArgumentTests
{
    [Fact]
    public void FindCacheRefusesANullName()
    {
        // It answered null ("no such cache") for a null name, as if the caller had asked a real question.
        using var a = TestAllocator.Create();
        var e = Assert.Throws<ArgumentNullException>(() => a.FindCache(null!));
        Assert.Equal("name", e.ParamName);
    }

    [Fact]
    public void MigrationReplacementsRefusesANegativeCount()
    {
        // A negative count reached the span slice and came out as an ArgumentOutOfRangeException of Span's own.
        using var a = TestAllocator.Create();
        var c = a.CreateCache("replacements_arg", 32, flags: SlabFlags.NoMerge);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Make(c, -1));
        Assert.Equal("count", e.ParamName);
        Assert.Equal(0, Make(c, 0));
        Assert.Equal(0, c.CountObjects());
    }

    private static int Make(KmemCache c, int count)
    {
        using var r = new MigrationReplacements(c, count, -1, stackalloc nint[4]);
        return r.Remaining;
    }
}
