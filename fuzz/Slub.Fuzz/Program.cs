using SharpFuzz;
using Slub.Fuzz;

// Fuzz targets for Slub.NET's hostile-input parsers, driven by afl-fuzz through SharpFuzz (see fuzz/run.sh).
//
//   Slub.Fuzz <target>                 under afl-fuzz: the fork-server loop; otherwise one input from stdin
//   Slub.Fuzz <target> <file|dir>...   runs the target once per file (corpus smoke test, crash reproduction)
//   Slub.Fuzz --list                   prints the target names
//
// A target reports a finding by letting an exception escape: either one the code under test must never
// throw for any input, or an OracleViolation when an invariant of the contract broke.

var targets = Targets.All;
if (args.Length == 0 || args[0] == "--list")
{
    foreach (var name in targets.Keys) Console.WriteLine(name);
    return args.Length == 0 ? 2 : 0;
}
if (!targets.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"unknown target '{args[0]}'; targets: {string.Join(", ", targets.Keys)}");
    return 2;
}
if (args.Length == 1)
{
    Fuzzer.Run(stream => target(ReadAll(stream)));
    return 0;
}
int files = 0, failed = 0;
foreach (var path in args.Skip(1).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p) : [p]))
{
    files++;
    try { target(File.ReadAllBytes(path)); }
    catch (Exception e)
    {
        failed++;
        Console.Error.WriteLine($"{path}: {e.GetType().Name}: {e.Message}");
    }
}
Console.WriteLine($"{args[0]}: {files} inputs, {failed} failed");
return failed == 0 ? 0 : 1;

static byte[] ReadAll(Stream s)
{
    using var ms = new MemoryStream();
    s.CopyTo(ms);
    return ms.ToArray();
}
