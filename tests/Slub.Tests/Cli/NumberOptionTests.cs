using System.CommandLine;

namespace Slub.Tests.Cli;

/// <summary>
/// Every number option of every System.CommandLine subcommand: a word that is not a number (or does not fit, or is out
/// of range) is a parse error naming the option and its range, exit code 1 — never the CLR type's name
/// ("System.Nullable`1[System.Int32]") nor a stack trace. Parsed and invoked in this process: nothing runs.
/// </summary>
public class NumberOptionTests
{
    private static (int Code, string Stderr) Invoke(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Slub.Cli.Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stderr.ToString());
    }

    private static readonly string Trace = Slub.Tests.Replay.Fixtures.SampleTrace;

    public static TheoryData<string[], string> NotNumbers => new()
    {
        { ["replay", Trace, "--cpus", "x"], "--cpus must be a whole number in 1..4096, not 'x'" },
        { ["replay", Trace, "--cpus", "99999999999999"], "--cpus must be a whole number in 1..4096, not '99999999999999'" },
        { ["replay", Trace, "--defrag-used-ratio", "x"], "--defrag-used-ratio must be a whole number in 0..100, not 'x'" },
        { ["replay", Trace, "--arena-gib", "1.5"], "--arena-gib must be a whole number in 1..256, not '1.5'" },
        { ["demo", "--nodes", "x"], "--nodes must be a whole number in 1..64, not 'x'" },
        { ["demo", "--seed", "x"], "--seed must be a whole number in -2147483648..2147483647, not 'x'" },
        { ["demo", "--scale", "x"], "--scale must be a number in (0, 20], not 'x'" },
        { ["demo", "--scale", "NaN"], "--scale must be a number in (0, 20], not 'NaN'" },
        { ["test-module", "smo", "--nodes", "x"], "--nodes must be a whole number in 1..64, not 'x'" },
        { ["test-module", "xarray", "--memory-mb", "x"], "--memory-mb must be a multiple of 4 in 4..65536, not 'x'" },
    };

    [Theory]
    [MemberData(nameof(NotNumbers))]
    public void AWordThatIsNotANumberNamesTheOptionAndItsRange(string[] args, string message)
    {
        var (code, stderr) = Invoke(args);
        Assert.Equal(1, code);
        Assert.StartsWith(message + Environment.NewLine, stderr);
        Assert.DoesNotContain("System.", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    public static TheoryData<string[], string> OutOfRange => new()
    {
        { ["replay", Trace, "--cpus", "0"], "--cpus must be a whole number in 1..4096, not '0'" },
        { ["replay", Trace, "--defrag-used-ratio", "101"], "--defrag-used-ratio must be a whole number in 0..100, not '101'" },
        { ["replay", Trace, "--arena-gib", "0"], "--arena-gib must be a whole number in 1..256, not '0'" },
        { ["demo", "--nodes", "65"], "--nodes must be a whole number in 1..64, not '65'" },
        { ["demo", "--scale", "0"], "--scale must be a number in (0, 20], not '0'" },
        { ["demo", "--scale", "20.5"], "--scale must be a number in (0, 20], not '20.5'" },
        { ["test-module", "smo", "--nodes", "0"], "--nodes must be a whole number in 1..64, not '0'" },
        { ["test-module", "smo", "--memory-mb", "6"], "--memory-mb must be a multiple of 4 in 4..65536, not '6'" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void ANumberOutOfRangeIsAParseErrorWithTheRange(string[] args, string message)
    {
        var result = Slub.Cli.Program.BuildRoot().Parse(args);
        Assert.Equal([message], result.Errors.Select(e => e.Message));
    }

    [Fact]
    public void NumbersInRangeAndLeftOutOptionsParseToTheirValuesAndDefaults()
    {
        var result = Slub.Cli.Program.BuildRoot().Parse(["replay", Trace, "--cpus", "4096", "--defrag-used-ratio", "0"]);
        Assert.Empty(result.Errors);
        Assert.Equal(4096, result.GetValue<int?>("--cpus"));
        Assert.Equal(0, result.GetValue<int?>("--defrag-used-ratio"));
        Assert.Equal(1, result.GetValue<int>("--arena-gib"));

        result = Slub.Cli.Program.BuildRoot().Parse(["replay", Trace]);
        Assert.Empty(result.Errors);
        Assert.Null(result.GetValue<int?>("--cpus"));
        Assert.Null(result.GetValue<int?>("--defrag-used-ratio"));

        result = Slub.Cli.Program.BuildRoot().Parse(["demo", "--scale", "0.05", "--seed", "-3"]);
        Assert.Empty(result.Errors);
        Assert.Equal(0.05, result.GetValue<double>("--scale"));
        Assert.Equal(-3, result.GetValue<int>("--seed"));
        Assert.Null(result.GetValue<int?>("--nodes"));

        result = Slub.Cli.Program.BuildRoot().Parse(["demo"]);
        Assert.Equal((1.0, 7), (result.GetValue<double>("--scale"), result.GetValue<int>("--seed")));

        result = Slub.Cli.Program.BuildRoot().Parse(["test-module", "smo", "--memory-mb", "8"]);
        Assert.Empty(result.Errors);
        Assert.Equal((1, 8), (result.GetValue<int>("--nodes"), result.GetValue<int>("--memory-mb")));
    }
}
