using System.Diagnostics;
using System.Text.Json;

namespace Slub.Tests.Replay;

/// <summary><c>slub replay</c> as a separate process: standard input, exit codes, error text.</summary>
public class ReplayCliTests
{
    private static (int Code, string Stdout, string Stderr) Run(byte[]? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Slub.Cli.dll"));
        psi.ArgumentList.Add("replay");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.BaseStream.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2))) { p.Kill(true); throw new TimeoutException("slub replay did not finish"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void GzipOnStandardInput()
    {
        var (code, stdout, stderr) = Run(File.ReadAllBytes(Fixtures.SampleTrace), "-", "--json", "--caches", "^dentry$", "--cpus", "2");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("-", doc.RootElement.GetProperty("trace").GetString());
        Assert.Equal(202_337, doc.RootElement.GetProperty("events").GetInt64());
        Assert.Equal(21, doc.RootElement.GetProperty("caches")[0].GetProperty("objs_per_slab").GetInt32());
    }

    [Fact]
    public void MalformedLineStopsWithFileLineAndText_OrIsSkipped()
    {
        var text = "  a-1 [000] ..... 1.0: kmem_cache_alloc: call_site=f ptr=0000000000000001 name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false\n"
                 + "oops, not a trace line\n";
        var path = Path.Combine(Path.GetTempPath(), $"replay-bad-{Environment.ProcessId}.trace");
        File.WriteAllText(path, text);
        try
        {
            var (code, _, stderr) = Run(null, path, "--cpus", "2");
            Assert.Equal(1, code);
            Assert.Contains($"{path}:2: no [CPU] column: oops, not a trace line", stderr);

            (code, var stdout, stderr) = Run(null, path, "--cpus", "2", "--skip-bad", "--json");
            Assert.True(code == 0, stderr);
            using var doc = JsonDocument.Parse(stdout);
            Assert.Equal(1, doc.RootElement.GetProperty("bad_lines").GetInt64());
            Assert.Equal(2, doc.RootElement.GetProperty("bad_line_samples")[0].GetProperty("line").GetInt64());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void APlotThatCannotBeWrittenIsRefusedBeforeTheReplay()
    {
        // Found only after a replay of a large trace, the report would be printed and then the run fail.
        string missing = Path.Combine(Path.GetTempPath(), $"replay-no-such-dir-{Guid.NewGuid():N}");
        var (code, stdout, stderr) = Run(null, Fixtures.SampleTrace, "--cpus", "2", "--plot", Path.Combine(missing, "x.svg"));
        Assert.Equal(1, code);
        Assert.DoesNotContain("End of trace", stdout);   // refused by the option's check: usage, no report
        Assert.Contains($"--plot: no directory {missing}", stderr);
    }

    [Fact]
    public void ADirectoryGivenAsTheTraceIsNamedAsOne()
    {
        var dir = Directory.CreateTempSubdirectory("replay-dir-");
        try
        {
            var (code, _, stderr) = Run(null, dir.FullName, "--cpus", "2");
            Assert.Equal(1, code);
            Assert.Equal($"slub replay: {dir.FullName} is a directory, not a trace file\n", stderr);
        }
        finally { dir.Delete(); }
    }

    [Fact]
    public void PngPlotIsWrittenAndValid()
    {
        var path = Path.Combine(Path.GetTempPath(), $"replay-plot-{Environment.ProcessId}.png");
        try
        {
            var (code, stdout, stderr) = Run(null, Fixtures.SampleTrace, "--cpus", "2", "--caches", "^(dentry|shmem_inode_cache)$", "--plot", path);
            Assert.True(code == 0, stderr);
            Assert.Contains($"plot written to {path}", stdout);
            var png = PngFile.Read(File.ReadAllBytes(path));
            Assert.Equal((1040, 260), (png.Width, png.Height));
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("out.gif", "'.gif'")]
    [InlineData("out", "(no extension)")]
    public void UnknownPlotFormatIsRefusedClearly(string file, string named)
    {
        var path = Path.Combine(Path.GetTempPath(), $"replay-plot-{Environment.ProcessId}-{file}");
        var (code, _, stderr) = Run(null, Fixtures.SampleTrace, "--plot", path);
        Assert.NotEqual(0, code);
        Assert.Contains($"--plot: unsupported image format {named}: the file name must end in .svg or .png", stderr);
        Assert.False(File.Exists(path));
    }

    [Theory]
    [InlineData("--cpus", "abc")]
    [InlineData("--defrag-used-ratio", "half")]
    [InlineData("--arena-gib", "1.5")]
    public void ANumberOptionThatIsNotANumberIsAParseErrorNotACrash(string option, string word)
    {
        // The range checks asked System.CommandLine for the value, which throws when the word did not convert:
        // an unhandled InvalidOperationException with a stack trace and exit code 134 (SIGABRT).
        var (code, stdout, stderr) = Run(null, Fixtures.SampleTrace, option, word);
        Assert.Equal(1, code);
        Assert.Contains($"{option} must be a whole number in ", stderr);
        Assert.Contains($", not '{word}'", stderr);
        Assert.DoesNotContain("System.", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
        Assert.DoesNotContain("End of trace", stdout);
    }

    [Theory]
    [InlineData("--cpus", "0", "--cpus must be a whole number in 1..4096, not '0'")]
    [InlineData("--defrag-used-ratio", "101", "--defrag-used-ratio must be a whole number in 0..100, not '101'")]
    [InlineData("--arena-gib", "0", "--arena-gib must be a whole number in 1..256, not '0'")]
    public void ANumberOutOfRangeIsRefusedWithTheRange(string option, string word, string message)
    {
        var result = Slub.Cli.Program.BuildRoot().Parse(["replay", Fixtures.SampleTrace, option, word]);
        Assert.Contains(result.Errors, e => e.Message == message);
    }

    private static (int Code, string Stdout, string Stderr) RunInProcess(string trace, bool json)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Slub.Cli.Replay.ReplayCommand.Run(
            new(trace, json, null, null, null, null, false, null, "fill-fullest", 2, 1), stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [InlineData("", "the file is empty")]
    [InlineData("# tracer: nop\n#\n\n", "3 lines read, 0 other events")]
    [InlineData("# tracer: nop\n  a-1 [000] ..... 1.0: sched_switch: prev_comm=a prev_pid=1 next_comm=b next_pid=2\n", "2 lines read, 1 other event")]
    public void ATraceWithoutSlabEventsWarnsOnStderrAndExitsZero(string text, string detail)
    {
        var path = Path.Combine(Path.GetTempPath(), $"replay-empty-{Guid.NewGuid():N}.trace");
        File.WriteAllText(path, text);
        try
        {
            var (code, stdout, stderr) = RunInProcess(path, json: false);
            Assert.Equal(0, code);
            string warning = $"slub replay: warning: {path} holds no slab events (kmem_cache_alloc, kmem_cache_free, kmalloc, kfree): {detail}; "
                             + "nothing was replayed. Were the kmem events enabled during the capture?";
            Assert.Equal(warning + Environment.NewLine, stderr);
            Assert.Contains("0 slab events", stdout);
            Assert.DoesNotContain("End of trace", stdout);   // no empty tables
            Assert.DoesNotContain("What-if", stdout);

            (code, stdout, stderr) = RunInProcess(path, json: true);
            Assert.Equal(0, code);
            Assert.Equal(warning + Environment.NewLine, stderr);
            using var doc = JsonDocument.Parse(stdout);
            Assert.Equal(0, doc.RootElement.GetProperty("events").GetInt64());
            Assert.Equal(0, doc.RootElement.GetProperty("caches").GetArrayLength());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ATraceOfOnlyMalformedLinesSkippedWarnsAndStillListsThem()
    {
        var path = Path.Combine(Path.GetTempPath(), $"replay-bad-only-{Guid.NewGuid():N}.trace");
        File.WriteAllText(path, "oops, not a trace line\n");
        try
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = Slub.Cli.Replay.ReplayCommand.Run(
                new(path, false, null, null, null, null, true, null, "fill-fullest", 2, 1), stdout, stderr);
            Assert.Equal(0, code);
            Assert.Contains(": 1 line read, 0 other events, 1 malformed line skipped; nothing was replayed.", stderr.ToString());
            Assert.Contains("1 malformed line skipped, the first one:", stdout.ToString());
            Assert.Contains($"{path}:1: no [CPU] column: oops, not a trace line", stdout.ToString());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ATraceWithSlabEventsHasNoWarning()
    {
        var path = Path.Combine(Path.GetTempPath(), $"replay-one-{Guid.NewGuid():N}.trace");
        File.WriteAllText(path, "  a-1 [000] ..... 1.0: kmem_cache_alloc: call_site=f ptr=0000000000000001 name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false\n");
        try
        {
            var (code, stdout, stderr) = RunInProcess(path, json: false);
            Assert.Equal(0, code);
            Assert.Equal("", stderr);
            Assert.Contains("End of trace", stdout);
        }
        finally { File.Delete(path); }
    }
}
