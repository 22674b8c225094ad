namespace Slub.Tests.Slabinfo;

/// <summary>The ordering, naming and counting rules that decide byte equality (notes §5, §7), on small made-up trees.</summary>
public class SlabinfoQuirkTests
{
    private static string[] Names(string listing) =>
        listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ')[0]).ToArray();

    [Fact]
    public void SizeSortHasNoTieBreakInTheSmoDialectSoTiesFollowTheExchangeSort()
    {
        // [alpha, zeta, big]: i=0 swaps alpha with big, giving [big, zeta, alpha]; the tie is never compared again.
        var src = new FakeSlabSource().Cache("alpha", 2, 10).Cache("zeta", 2, 10).Cache("big", 5, 10);
        Assert.Equal(["big", "zeta", "alpha"], Names(src.Run("-S").Out));
    }

    [Fact]
    public void SizeSortBreaksTiesByNameInTheCurrentDialect()
    {
        var src = new FakeSlabSource().Cache("alpha", 2, 10).Cache("zeta", 2, 10).Cache("big", 5, 10);
        Assert.Equal(["big", "alpha", "zeta"], Names(src.Run("--compat", "current", "-S").Out));
    }

    [Fact]
    public void InvertedNumericSortDoesNotSortAtAll()
    {
        var src = new FakeSlabSource().Cache("mid", 3, 10).Cache("small", 1, 10).Cache("big", 5, 10);
        Assert.Equal(["mid", "small", "big"], Names(src.Run("-i", "-S").Out));
        Assert.Equal(["small", "mid", "big"], Names(src.Run("-i").Out)); // -i by name does reverse
    }

    [Fact]
    public void NameSortIsCaseInsensitiveAndPutsColonFirst()
    {
        var src = new FakeSlabSource().Cache("b", 1, 1).Cache("A", 1, 1).Cache(":x-0000064", 1, 1, attrs: [("aliases", "2\n")])
            .Alias("one", ":x-0000064").Alias("two", ":x-0000064");
        Assert.Equal([":x-0000064", "A", "b"], Names(src.Run().Out));
    }

    [Fact]
    public void MergedCacheTakesTheLongestAliasUnlessAKmallocNameComesFirst()
    {
        var longest = new FakeSlabSource().Cache(":0000064", 1, 1).Cache("other", 1, 1)
            .Alias("ab", ":0000064");
        Assert.Contains("ab ", longest.Run().Out);

        // With -f every merged cache is renamed: the longest name wins, ties keep the first...
        var src = new FakeSlabSource().Cache(":0000064", 1, 1).Cache("other", 1, 1)
            .Alias("short", ":0000064").Alias("longer_name", ":0000064").Alias("tie_name_xx", ":0000064");
        Assert.Equal(["longer_name", "other"], Names(src.Run("-f").Out));

        // ...and a "kmall" name stops the search when it is reached, even if a longer one follows.
        var kmall = new FakeSlabSource().Cache(":0000064", 1, 1).Cache("other", 1, 1)
            .Alias("x", ":0000064").Alias("kmalloc-64", ":0000064").Alias("very_long_alias_name", ":0000064");
        Assert.Equal(["kmalloc-64", "other"], Names(kmall.Run("-f").Out));
    }

    [Fact]
    public void MergedCacheWithoutAliasIsHiddenAndLeavingOneCacheGivesAReport()
    {
        var src = new FakeSlabSource().Cache(":0000064", 1, 1).Cache("dentry", 4, 80);
        var r = src.Run();
        Assert.StartsWith("\nSlabcache: dentry           Aliases:  0 Order :  0 Objects: 80\n", r.Out);
        Assert.DoesNotContain("0000064", r.Out);
    }

    [Fact]
    public void HeaderIsPrintedLazilySoAnEmptyResultPrintsNothing()
    {
        var src = new FakeSlabSource().Cache("a", 0, 0).Cache("b", 0, 0);
        var r = src.Run();
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Out);
        Assert.Contains("Name ", src.Run("-z").Out);
    }

    [Fact]
    public void LinesCountsCachesLookedAtNotRowsPrinted()
    {
        var src = new FakeSlabSource().Cache("a_empty", 0, 0).Cache("b_empty", 0, 0).Cache("c", 1, 1).Cache("d", 1, 1);
        Assert.Equal(["c"], Names(src.Run("-N", "3").Out));
        Assert.Equal("", src.Run("-N2").Out);
        Assert.Equal(["c", "d"], Names(src.Run("-N4").Out));
        Assert.Equal(["a_empty"], Names(src.Run("--lines=0", "-z").Out)); // K < 1 becomes 1
    }

    [Fact]
    public void SmoFractionColumnDividesBySlabsTimesObjectsPerSlab()
    {
        var src = new FakeSlabSource()
            .Cache("dentry", 40, 800, objectSize: 192, objsPerSlab: 21, attrs: [("partial", "5 N0=5\n")])
            .Cache("other", 1, 1);
        var smo = src.Run("^dentry$", "-l").Out.Split('\n')[0];
        Assert.Equal("", smo); // single cache → report, not a row
        var row = src.Run().Out.Split('\n')[1];
        Assert.Matches(@"^dentry\s+800\s+192\s+163\.8K\s+40/5/0\s+21 0   0  93 $", row);
        var currentRow = src.Run("--compat", "current").Out.Split('\n')[1];
        Assert.Matches(@" 21 0  12  93 $", currentRow);
    }

    [Fact]
    public void TotalsCountMergedCachesThePatternDidNotSelect()
    {
        var src = new FakeSlabSource().Cache(":0000064", 10, 100).Cache("dentry", 4, 80).Cache("inode", 2, 5);
        var totals = src.Run("-T", "dentry").Out;
        Assert.Contains("Slabcaches :               2   Aliases  :           0->1    Active:      2\n", totals);
    }

    [Fact]
    public void UnknownEntryTypeIsFatalOnlyWhenThePatternSelectsIt()
    {
        var src = new FakeSlabSource().Cache("a", 1, 1).Other("README");
        var r = src.Run();
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("Unknown file type 8\n", r.Err);
        Assert.Equal(0, src.Run("^a$").ExitCode);
    }

    [Fact]
    public void AliasToAMissingCacheIsUnresolved()
    {
        var src = new FakeSlabSource().Cache("a", 1, 1).Alias("ghost", ":nowhere");
        var r = src.Run("-a");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("Unresolved alias :nowhere\n", r.Err);
    }
}
