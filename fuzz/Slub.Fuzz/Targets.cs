using System.Text;
using Slub.Sysfs;

namespace Slub.Fuzz;

/// <summary>An invariant of the code under test broke for this input.</summary>
public sealed class OracleViolation(string message) : Exception(message);

/// <summary>The fuzz targets by name. Each takes one input; the allocator state behind it is built once per process.</summary>
public static class Targets
{
    public static IReadOnlyDictionary<string, Action<byte[]>> All { get; } = new Dictionary<string, Action<byte[]>>
    {
        ["sysfs-write"] = SysfsWrite.Run,
        ["live-endpoint"] = LiveProtocol.Run,
        ["slub-debug"] = SlubDebugText.Run,
        ["testmod-command"] = TestModuleCommands.Run,
        ["ftrace-line"] = FtraceLines.Run,
    };
}

/// <summary>
/// A small allocator shaped like a real one: two nodes, a plain cache with objects, two merged names (an
/// alias link), a debug cache and a movable cache with fragmented checksummed objects.
/// </summary>
internal sealed unsafe class FuzzWorld
{
    public readonly SlabAllocator Allocator;
    public readonly MovableHandleTable Table;
    public readonly KmemCache Debug;
    public readonly KmemCache Plain;
    private readonly List<long> _handles = new();
    private int _runs;

    public FuzzWorld()
    {
        Allocator = new SlabAllocator(new SlabOptions { BytesPerNode = 16 << 20, EmulatedNodes = 2, Cpus = 2, SlubDebug = "-" });
        Plain = Allocator.CreateCache("fz_plain", 96, flags: SlabFlags.NoMerge);
        for (int i = 0; i < 300; i++) Plain.Alloc();
        // failslab armed for caches whose switch (the `failslab` attribute) a write turns on.
        Allocator.Faults.Slab.CacheFilter = true;
        Allocator.Faults.Slab.EveryNth = 2;
        Allocator.CreateCache("fz_merge_a", 200);
        Allocator.CreateCache("fz_merge_b", 200);
        Debug = Allocator.CreateCache("fz_debug", 48, flags: SlabFlags.ConsistencyChecks | SlabFlags.RedZone | SlabFlags.StoreUser);
        for (int i = 0; i < 100; i++) Debug.Alloc();
        Table = new MovableHandleTable(Allocator, "fz_movable", 40);
        for (int i = 0; i < 2000; i++)
        {
            long h = Table.Allocate(i % 2);
            if (i % 5 == 0) { Stamp(h); _handles.Add(h); } else Table.Free(h);
        }
    }

    private void Stamp(long h)
    {
        using var s = Table.Access(h);
        for (int i = 0; i < s.Bytes.Length; i++) s.Bytes[i] = (byte)(h * 7 + i);
    }

    /// <summary>Every movable object still holds its bytes and the counts agree; every 64th call also validates.</summary>
    public void CheckIntegrity()
    {
        foreach (long h in _handles)
        {
            using var s = Table.Access(h);
            for (int i = 0; i < s.Bytes.Length; i++)
                if (s.Bytes[i] != (byte)(h * 7 + i)) throw new OracleViolation($"movable object {h} lost its contents at byte {i}");
        }
        if (++_runs % 64 != 0) return;
        Table.Cache.FlushAll();
        long objects = Table.Cache.CountObjects();
        if (objects != Table.Count) throw new OracleViolation($"fz_movable counts {objects} objects, the table holds {Table.Count}");
        foreach (var c in new[] { Table.Cache, Debug })
            if (c.Validate() is { Count: > 0 } problems) throw new OracleViolation($"validate {c.Name}: {problems[0]}");
    }

    /// <summary>The values of the writable attributes that hold settings (what a refused write must leave alone).</summary>
    public string Settings(SlabSysfs sysfs, string cacheDir)
    {
        var sb = new StringBuilder();
        foreach (var a in new[] { "min_partial", "cpu_partial", "remote_node_defrag_ratio", "defrag_used_ratio", "failslab" })
            sb.Append(sysfs.Read($"{cacheDir}/{a}")).Append('|');
        return sb.ToString();
    }
}

/// <summary>
/// <c>SlabSysfs.Write</c> with hostile paths and values. Input: byte 0 picks a real cache/attribute pair
/// when even (the value is the rest), otherwise the rest is <c>path=value</c> raw. Contract: only
/// <see cref="SysfsException"/> escapes; a refused write changes no setting; accepted numeric settings
/// read back as written; movable objects keep their contents; counts and validate stay clean.
/// </summary>
internal static class SysfsWrite
{
    private static readonly FuzzWorld s_world = new();
    private static readonly string[] s_paths = BuildPaths();
    private static readonly System.Text.RegularExpressions.Regex s_move = new(@"\A[nN]?[0-9]{1,2}(?: [nN]?[0-9]{1,2})?\n?\z");

    private static string[] BuildPaths()
    {
        var dirs = s_world.Allocator.Sysfs.Entries().Select(e => e.Name).ToList();
        return dirs.SelectMany(d => SlabAttribute.All.Where(a => a.Writable).Select(a => $"{d}/{a.Name}")).ToArray();
    }

    public static void Run(byte[] input)
    {
        if (input.Length == 0) return;
        var sysfs = s_world.Allocator.Sysfs;
        string path, value;
        if ((input[0] & 1) == 0)
        {
            path = s_paths[(input[0] >> 1) % s_paths.Length];
            value = Encoding.UTF8.GetString(input, 1, input.Length - 1);
        }
        else
        {
            string text = Encoding.UTF8.GetString(input, 1, input.Length - 1);
            int eq = text.IndexOf('=');
            path = eq < 0 ? text : text[..eq];
            value = eq < 0 ? "" : text[(eq + 1)..];
        }
        int slash = path.IndexOf('/');
        string? dir = slash > 0 && s_world.Allocator.Sysfs.Entries().Any(e => e.Name == path[..slash]) ? path[..slash] : null;
        string? before = dir is null ? null : s_world.Settings(sysfs, dir);
        try
        {
            sysfs.Write(path, value);
        }
        catch (SysfsException)
        {
            if (dir is not null && s_world.Settings(sysfs, dir) != before)
                throw new OracleViolation($"refused write of '{value}' to {path} changed settings: {before} -> {s_world.Settings(sysfs, dir)}");
            s_world.CheckIntegrity();
            return;
        }
        string attr = path[(slash + 1)..];
        // Accepted values must be what docs/formats.md promises, nothing looser.
        if (attr == "move" && !s_move.IsMatch(value)) throw new OracleViolation($"move accepted '{value}'");
        if (attr == "balance" && value is not ("1" or "1\n")) throw new OracleViolation($"balance accepted '{value}'");
        if (attr == "failslab" && value is not ("0" or "1" or "0\n" or "1\n")) throw new OracleViolation($"failslab accepted '{value}'");
        if (attr is "defrag_used_ratio" or "remote_node_defrag_ratio" or "cpu_partial")
        {
            string back = sysfs.Read(path).TrimEnd('\n');
            if (ulong.Parse(back) != ulong.Parse(value.Trim())) throw new OracleViolation($"wrote '{value}' to {path}, reads back '{back}'");
        }
        s_world.CheckIntegrity();
    }
}

/// <summary>
/// The live endpoint's protocol fed raw bytes (no socket: <see cref="LiveEndpoint.ServeStream"/>). Bit 0
/// of byte 0 enables writes; the rest is the byte stream a peer sends. Contract: nothing escapes; every
/// answer is framed (<c>OK n</c> + n bytes, or <c>ERR ERRNO message</c>); with writes disabled no setting
/// changes; objects and counts stay intact.
/// </summary>
internal static class LiveProtocol
{
    private static readonly FuzzWorld s_world = new();
    private static readonly LiveEndpoint s_endpoint = s_world.Allocator.OpenLiveEndpoint(
        allowWrites: false, socketPath: Path.Combine(Path.GetTempPath(), $"slub-fuzz-{Environment.ProcessId}.sock"));

    static LiveProtocol()
    {
        // An extra file like a test module's control file: allocates n objects (at most 500) and frees them.
        var plain = s_world.Plain;
        s_endpoint.AddFile("fz/alloc", () => "n\n", v =>
        {
            if (!int.TryParse(v, System.Globalization.NumberStyles.None, null, out int n) || n > 500)
                throw new SysfsException(Errno.EINVAL, "fz/alloc", "expected 0..500");
            var got = new List<nint>();
            try { for (int i = 0; i < n; i++) got.Add(plain.Alloc()); }
            finally { foreach (nint p in got) plain.Free(p); }
        });
    }

    public static void Run(byte[] input)
    {
        if (input.Length == 0) return;
        bool writes = (input[0] & 1) != 0;
        s_endpoint.AllowWrites = writes;
        var sysfs = s_world.Allocator.Sysfs;
        var dirs = sysfs.Entries().Where(e => !e.IsLink).Select(e => e.Name).ToArray();
        string before = writes ? "" : string.Concat(dirs.Select(d => s_world.Settings(sysfs, d)));
        var output = new MemoryStream();
        var stream = new ScriptedStream(new MemoryStream(input, 1, input.Length - 1), output);
        s_endpoint.ServeStream(stream);
        CheckFraming(output.ToArray());
        if (!writes && string.Concat(dirs.Select(d => s_world.Settings(sysfs, d))) != before)
            throw new OracleViolation("a setting changed while writes were disabled");
        s_world.CheckIntegrity();
    }

    private static void CheckFraming(byte[] output)
    {
        int pos = 0;
        while (pos < output.Length)
        {
            int nl = Array.IndexOf(output, (byte)'\n', pos);
            if (nl < 0) throw new OracleViolation($"unterminated answer at byte {pos}");
            string head = Encoding.UTF8.GetString(output, pos, nl - pos);
            pos = nl + 1;
            if (head.StartsWith("OK ", StringComparison.Ordinal))
            {
                if (!int.TryParse(head.AsSpan(3), System.Globalization.NumberStyles.None, null, out int n) || pos + n > output.Length)
                    throw new OracleViolation($"bad OK frame '{head}'");
                pos += n;
            }
            else if (head.StartsWith("ERR ", StringComparison.Ordinal))
            {
                string code = head[4..].Split(' ')[0];
                if (!Enum.TryParse<Errno>(code, out _) || !code.StartsWith('E'))
                    throw new OracleViolation($"bad ERR code in '{head}'");
            }
            else throw new OracleViolation($"answer is neither OK nor ERR: '{head}'");
        }
    }
}

/// <summary>A connection without a socket: reads come from one stream, writes go to another.</summary>
internal sealed class ScriptedStream(Stream input, Stream output) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => input.Read(buffer);
    public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);
    public override void Write(ReadOnlySpan<byte> buffer) => output.Write(buffer);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// The <c>slub_debug=</c> / <c>SLUB_DEBUG</c> parser (text from the environment). Contract: only
/// <see cref="FormatException"/> escapes <see cref="SlubDebugOption.Parse"/>; <c>FlagsFor</c> never throws and
/// yields only debug flags; a cache named in a block gets that block's flags.
/// </summary>
internal static class SlubDebugText
{
    private const SlabFlags Allowed = SlabFlags.DebugFlags | SlabFlags.Trace | SlabFlags.FailSlab;

    public static void Run(byte[] input)
    {
        string text = Encoding.UTF8.GetString(input);
        SlubDebugOption opt;
        try { opt = SlubDebugOption.Parse(text); }
        catch (FormatException) { return; }
        var names = new List<string> { "kmalloc-64", "dentry", "", "*" };
        foreach (string block in text.Split(';'))
            names.AddRange(block.Split(',').Skip(1));
        foreach (string name in names)
        {
            SlabFlags f = opt.FlagsFor(name);
            if ((f & ~Allowed) != 0) throw new OracleViolation($"FlagsFor({name}) = {f}");
        }
    }
}

/// <summary>
/// The SMO test module's command parser (<c>smo/callfn</c>, <see cref="Slub.Cli.TestModules.SmoTestModule.Write"/>):
/// up to 8 commands per input, separated by NUL bytes. The module lives on a small allocator (8 MiB per
/// node) so that <c>alloc</c>/<c>test</c> with huge counts end quickly in ENOMEM. Contract: only
/// <see cref="SysfsException"/> escapes; after every command the module's list and the cache agree on the
/// number of objects; every 64th input validate is clean.
/// </summary>
internal static class TestModuleCommands
{
    private static readonly SlabAllocator s_allocator =
        new(new SlabOptions { BytesPerNode = 8 << 20, EmulatedNodes = 2, Cpus = 2, SlubDebug = "-" });
    private static readonly Slub.Cli.TestModules.SmoTestModule s_module = new(s_allocator);
    private static int s_runs;

    public static void Run(byte[] input)
    {
        s_module.Write("free 0");   // every input starts from an empty list (mobility, once enabled, stays)
        var commands = Encoding.UTF8.GetString(input).Split('\0');
        foreach (string command in commands.Take(8))
        {
            try { s_module.Write(command); }
            catch (SysfsException) { }
            s_module.Cache.FlushAll();
            long objects = s_module.Cache.CountObjects();
            if (objects != s_module.ListedObjects)
                throw new OracleViolation($"after '{command}': the module lists {s_module.ListedObjects} objects, the cache holds {objects}");
        }
        if (++s_runs % 64 == 0 && s_module.Cache.Validate() is { Count: > 0 } problems)
            throw new OracleViolation($"validate smo_test: {problems[0]}");
    }
}

/// <summary>
/// The ftrace line parser on arbitrary bytes: every line is an event, a comment, another event, a lost-events
/// line or malformed with a reason; an event's fields are consistent; and the same bytes through the
/// line reader (as a file) give the same verdicts. Any other exception is a crash.
/// </summary>
internal static class FtraceLines
{
    public static void Run(byte[] input)
    {
        var verdicts = new List<Slub.Trace.TraceLineKind>();
        foreach (var raw in input.AsSpan().Split((byte)'\n'))
        {
            var line = input.AsSpan()[raw];
            var kind = Slub.Trace.FtraceParser.TryParse(line, out var ev, out string? error);
            verdicts.Add(kind);
            if (kind == Slub.Trace.TraceLineKind.Malformed && string.IsNullOrEmpty(error))
                throw new OracleViolation("a malformed line came back without a reason");
            if (kind == Slub.Trace.TraceLineKind.Event && (ev.Cpu < 0 || (ev.IsAlloc && ev.BytesAlloc < -1)))
                throw new OracleViolation($"event with cpu {ev.Cpu} and bytes_alloc {ev.BytesAlloc}");
        }
        using var reader = new Slub.Trace.TraceLineReader(new MemoryStream(input), "fuzz-input");
        int i = 0;
        while (reader.TryReadLine(out var line))
        {
            var kind = Slub.Trace.FtraceParser.TryParse(line, out _, out _);
            if (i < verdicts.Count && kind != verdicts[i])
                throw new OracleViolation($"line {i + 1}: {kind} through the reader, {verdicts[i]} on its own");
            i++;
        }
    }
}
