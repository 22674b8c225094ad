using System.IO.Compression;
using BenchmarkDotNet.Attributes;
using Slub.Trace;

namespace Slub.Benchmarks;

/// <summary>
/// Trace parsing and replay speed on the real capture tests/Slub.Tests/Fixtures/traces/sample-churn.trace.gz
/// (202,337 events). The issue asks for at least 2 million events per second; divide 202,337 by the mean.
/// </summary>
[MemoryDiagnoser, MinColumn, MaxColumn]
public class ReplayBenchmarks
{
    /// <summary>Slab events in the sample trace.</summary>
    public const int Events = 202_337;

    private byte[] _text = [];
    private byte[] _gzip = [];

    [GlobalSetup]
    public void Setup()
    {
        _gzip = File.ReadAllBytes(FindTrace());
        using var gz = new GZipStream(new MemoryStream(_gzip), CompressionMode.Decompress);
        var ms = new MemoryStream();
        gz.CopyTo(ms);
        _text = ms.ToArray();
    }

    private static string FindTrace()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "tests", "Slub.Tests", "Fixtures", "traces", "sample-churn.trace.gz");
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException("tests/Slub.Tests/Fixtures/traces/sample-churn.trace.gz not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Split lines and parse every event (plain text in memory).</summary>
    [Benchmark]
    public long Parse()
    {
        using var reader = new TraceLineReader(new MemoryStream(_text), "bench");
        long events = 0;
        while (reader.TryReadLine(out var line))
            if (FtraceParser.TryParse(line, out _, out _) == TraceLineKind.Event) events++;
        return events;
    }

    /// <summary>The same from the .gz (decompression included).</summary>
    [Benchmark]
    public long ParseGzip()
    {
        using var reader = new TraceLineReader(new MemoryStream(_gzip), "bench");
        long events = 0;
        while (reader.TryReadLine(out var line))
            if (FtraceParser.TryParse(line, out _, out _) == TraceLineKind.Event) events++;
        return events;
    }

    /// <summary>Parse and replay every event against real caches, then the what-if (plain text in memory).</summary>
    [Benchmark]
    public long Replay()
    {
        using var reader = new TraceLineReader(new MemoryStream(_text), "bench");
        using var replayer = new TraceReplayer(new TraceReplayOptions { Cpus = 2 });
        return replayer.Run(reader).ReplayedEvents;
    }

    /// <summary>What <c>slub replay sample-churn.trace.gz</c> does: decompress, parse, replay, what-if.</summary>
    [Benchmark]
    public long ReplayGzip()
    {
        using var reader = new TraceLineReader(new MemoryStream(_gzip), "bench");
        using var replayer = new TraceReplayer(new TraceReplayOptions { Cpus = 2 });
        return replayer.Run(reader).ReplayedEvents;
    }
}
