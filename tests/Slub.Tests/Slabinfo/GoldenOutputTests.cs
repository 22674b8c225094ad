namespace Slub.Tests.Slabinfo;

/// <summary>
/// Byte-for-byte comparison with the real C tools. Each row of Fixtures/golden/cases.tsv (name, fixture, dialect,
/// arguments) was run with the C tool compiled from the kernel sources (the SMO version: tools/vm/slabinfo.c of the
/// series + patch 06; the current version: tools/mm/slabinfo.c), inside a private mount namespace whose
/// /sys/kernel/slab was a bind mount of the fixture directory, with argv[0] = "slabinfo". stdout, stderr and the exit
/// code were recorded as &lt;name&gt;.out/.err/.rc. The fixture's raw readdir order at that moment is recorded in its
/// .readdir-order file, which DirectorySlabSource follows, so order-sensitive options (-a, -f, -S, -L, -A, -i) are
/// compared byte for byte too. See docs/formats.md.
/// </summary>
public class GoldenOutputTests
{
    public static TheoryData<string, string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string, string>();
        foreach (var line in File.ReadAllLines(Path.Combine(SlabinfoFixtures.Root, "golden", "cases.tsv")))
        {
            if (line.Length == 0)
                continue;
            var f = line.Split('\t');
            data.Add(f[0], f[1], f[2], f.Length > 3 ? f[3] : "");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTheCTool(string name, string fixture, string dialect, string args)
    {
        var argv = new List<string> { "--sysfs", SlabinfoFixtures.Sysfs(fixture), "--compat", dialect };
        argv.AddRange(args.Split(' ', StringSplitOptions.RemoveEmptyEntries));

        var result = SlabinfoFixtures.Run(argv, null);

        Assert.Equal(File.ReadAllText(SlabinfoFixtures.Golden(fixture, dialect, name, "out")), result.Out);
        Assert.Equal(File.ReadAllText(SlabinfoFixtures.Golden(fixture, dialect, name, "err")), result.Err);
        Assert.Equal(int.Parse(File.ReadAllText(SlabinfoFixtures.Golden(fixture, dialect, name, "rc")).Trim()), result.ExitCode);
    }

    [Fact]
    public void EveryListedOptionHasAGoldenCase()
    {
        var used = Cases().Select(row => (string)row[2] + " " + (string)row[3]).ToList();
        foreach (var letter in "aABCDefhilLMnNorStTUXz1")
            Assert.Contains(used, u => u.StartsWith("smo", StringComparison.Ordinal) &&
                                       u.Split(' ').Skip(1).Any(w => w.StartsWith('-') && !w.StartsWith("--") && w.Contains(letter)));
        Assert.Contains(used, u => u.StartsWith("current") && u.Contains("-P"));
    }
}
