using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

public class GetoptTests
{
    private static readonly LongOption[] Longs =
    [
        new("debug", ArgumentMode.Optional, 'd'), new("display-activity", ArgumentMode.None, 'D'),
        new("lines", ArgumentMode.Required, 'N'), new("zero", ArgumentMode.None, 'z'),
    ];

    private static (List<string> Seen, IReadOnlyList<string> Operands, string Err) Parse(params string[] args)
    {
        var err = new StringWriter();
        var g = new Getopt("slabinfo", args, "d::DN:z", Longs, err);
        var seen = new List<string>();
        int c;
        while ((c = g.Next()) != -1)
            seen.Add(c == '?' ? $"?{(int)g.OptOpt}" : g.OptArg is null ? $"{(char)c}" : $"{(char)c}={g.OptArg}");
        return (seen, g.Operands, err.ToString());
    }

    [Fact]
    public void BundledLettersAndAttachedOptionalArgument()
    {
        Assert.Equal(["z", "d=fz"], Parse("-zdfz").Seen);
        Assert.Equal(["d"], Parse("-d", "fz").Seen);           // optional argument only when attached
        Assert.Equal(["fz"], Parse("-d", "fz").Operands);
        Assert.Equal(["d=fz"], Parse("--debug=fz").Seen);
        Assert.Equal(["d"], Parse("--debug", "fz").Seen);
    }

    [Fact]
    public void RequiredArgumentAttachedOrNextWord()
    {
        Assert.Equal(["N=5"], Parse("-N5").Seen);
        Assert.Equal(["N=-z"], Parse("-N", "-z").Seen);         // the next word is taken even if it looks like an option
        Assert.Equal(["N=3"], Parse("--lines", "3").Seen);
        Assert.Equal(["N=3"], Parse("--li=3").Seen);             // unique prefix
    }

    [Fact]
    public void OperandsArePermutedToTheEndAndDoubleDashEndsOptions()
    {
        var r = Parse("dentry", "-z", "inode", "--", "-D");
        Assert.Equal(["z"], r.Seen);
        Assert.Equal(["dentry", "inode", "-D"], r.Operands);
    }

    [Fact]
    public void DiagnosticsMatchGlibc()
    {
        var bad = Parse("-Q");
        Assert.Equal(["?81"], bad.Seen);
        Assert.Equal("slabinfo: invalid option -- 'Q'\n", bad.Err);

        var missing = Parse("-N");
        Assert.Equal(["?78"], missing.Seen);
        Assert.Equal("slabinfo: option requires an argument -- 'N'\n", missing.Err);

        var ambiguous = Parse("--d");
        Assert.Equal(["?0"], ambiguous.Seen);
        Assert.Equal("slabinfo: option '--d' is ambiguous; possibilities: '--debug' '--display-activity'\n", ambiguous.Err);

        Assert.Equal("slabinfo: unrecognized option '--nope=1'\n", Parse("--nope=1").Err);
        Assert.Equal("slabinfo: option '--zero' doesn't allow an argument\n", Parse("--zero=1").Err);
        Assert.Equal("slabinfo: option '--lines' requires an argument\n", Parse("--lines").Err);
    }
}
