namespace Slub.Tests.Cli;

public class RootHelpTests
{
    [Fact]
    public void RootHelpNamesSlabinfosOwnOptions()
    {
        // 'slub slabinfo -h' prints the C tool's usage byte for byte, which cannot mention what Slub.NET adds; before,
        // nothing the command printed named --sysfs, --pid, --compat, --json or --map.
        var (code, stdout, stderr) = CliRunner.Run("--help");
        Assert.True(code == 0, stderr);
        foreach (var option in new[] { "--sysfs DIR", "--pid PID", "--compat smo|current", "--json", "--map CACHE" })
            Assert.Contains(option, stdout);
    }
}
