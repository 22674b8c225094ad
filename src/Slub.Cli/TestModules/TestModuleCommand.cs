using System.CommandLine;
using System.Runtime.InteropServices;
using Slub.Sysfs;

namespace Slub.Cli.TestModules;

/// <summary>
/// <c>slub test-module smo|xarray</c>: hosts one of the series' test modules in this process and serves its
/// control files next to the slab attribute tree on the live endpoint, until told to exit. The host (options,
/// endpoint, <c>DIR/unload</c>, signals, stdin watch, console) is the same for every module.
/// </summary>
internal static class TestModuleCommand
{
    /// <summary>The SMO module's unload file (every module has <c>DIR/unload</c>).</summary>
    public const string UnloadPath = "smo/unload";

    public static Command Create()
    {
        var cmd = new Command("test-module", "Host one of the series' kernel test modules in this process, driven through its control files on the live endpoint.");
        cmd.Subcommands.Add(CreateModule("smo",
            "The SMO test module (slub_defrag.c, the series' patch 07): cache smo_test (56-byte objects, constructor, migrate callback) " +
            "and the control file smo/callfn taking 'enable', 'alloc N [NODE]', 'free N [POS]', 'test [NR [KEEP]]'. " +
            "Runs with slub_debug=FZPU by default so that the series' expected numbers hold. Prints the socket path on the first line " +
            "of stdout when ready. Other files: smo/log (the module's messages; the dmesg stand-in), smo/objects (the module's list), " +
            "smo/unload (write 1 to unload and exit). Also exits on SIGTERM/SIGINT, and when stdin is a pipe that reaches end of file. " +
            "See docs/test-modules.md.",
            a => new SmoTestModule(a)));
        cmd.Subcommands.Add(CreateModule("xarray",
            "The XArray test module (slub_defrag_xarray.c, the series' patch 11): cache smox_test (8-byte things, constructor, migrate " +
            "callback that re-stores the moved thing in the array) and the XArray 'things', whose nodes live in the movable xa_node cache. " +
            "At load it stores 10000 things and erases all but every 6th, leaving both caches sparse for shrinking " +
            "(WRITE xa_node/shrink, smox_test/shrink). Control file smo_xarray/callfn (ours) taking 'test [NR [KEEP]]' and 'clear'. " +
            "Other files: smo_xarray/log, smo_xarray/things (index and id of every entry), smo_xarray/unload. Same host options as smo. " +
            "See docs/test-modules.md.",
            a => new XArrayTestModule(a)));
        return cmd;
    }

    private static Command CreateModule(string name, string description, Func<SlabAllocator, IHostedModule> load)
    {
        var interactive = new Option<bool>("--interactive", "-i")
        {
            Description = "Also open a console on this terminal to type the module's commands by hand; cache figures are shown after each one.",
        };
        var socket = new Option<string?>("--socket")
        {
            Description = "Path of the live endpoint's Unix socket (default: $TMPDIR/slub-<pid>.sock).",
        };
        var slubDebug = new Option<string>("--slub-debug")
        {
            Description = "slub_debug flags for the allocator (the kernel's slub_debug= syntax). The default FZPU means no per-CPU slabs, " +
                          "which is what the series' expected numbers assume; '-' turns debugging off (then per-CPU slabs change the counts).",
            DefaultValueFactory = _ => "FZPU",
        };
        var nodes = NumberOptions.Int("--nodes",
            "Emulated NUMA nodes, 1..64 (alloc N NODE takes 0..nodes-1). Default 1, so allocations cannot spread over nodes.",
            defaultValue: 1, min: 1, max: 64);
        var memory = NumberOptions.Int("--memory-mb",
            "Address space per node in MiB (a multiple of 4 in 4..65536); allocations fail when it is used up.",
            defaultValue: 256, min: 4, max: 64 * 1024, multipleOf: 4);
        slubDebug.Validators.Add(r =>
        {
            try { SlubDebugOption.Parse(r.GetValueOrDefault<string>()); }
            catch (FormatException e) { r.AddError($"--slub-debug: {e.Message}"); }
        });
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Do not copy the module's log to stderr." };
        var cmd = new Command(name, description)
        {
            interactive, socket, slubDebug, nodes, memory, quiet,
        };
        cmd.SetAction(pr => Run(name, load, new HostSettings(pr.GetValue(interactive), pr.GetValue(socket), pr.GetValue(slubDebug)!,
            pr.GetValue(nodes), pr.GetValue(memory), pr.GetValue(quiet))));
        return cmd;
    }

    internal sealed record HostSettings(bool Interactive, string? Socket, string SlubDebug, int Nodes, int MemoryMb, bool Quiet);

    private static int Run(string name, Func<SlabAllocator, IHostedModule> load, HostSettings s)
    {
        string me = $"slub test-module {name}";

        using var allocator = new SlabAllocator(new SlabOptions
        {
            SlubDebug = s.SlubDebug,
            EmulatedNodes = s.Nodes,
            BytesPerNode = (long)s.MemoryMb << 20,
            Merge = true,
        });
        var exit = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!s.Quiet && !s.Interactive) allocator.Log.LineWritten += line => Console.Error.WriteLine(line);

        var module = load(allocator);
        LiveEndpoint endpoint;
        try { endpoint = allocator.OpenLiveEndpoint(allowWrites: true, socketPath: s.Socket); }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"{me}: cannot open the live endpoint: {e.Message}");
            module.Dispose();
            return 1;
        }
        module.Register(endpoint);
        string unloadPath = $"{module.Directory}/unload";
        endpoint.AddFile(unloadPath, null, value =>
        {
            if (value.TrimEnd('\n') != "1") throw new SysfsException(Errno.EINVAL, unloadPath, "write 1 to unload the module and exit");
            exit.TrySetResult("unloaded through " + unloadPath);
        });

        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; exit.TrySetResult("SIGTERM"); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; exit.TrySetResult("SIGINT"); });

        Console.Out.WriteLine(endpoint.SocketPath);
        Console.Out.Flush();

        if (s.Interactive)
        {
            var console = new InteractiveConsole(module, allocator, endpoint.SocketPath);
            var loop = new Thread(() =>
            {
                try
                {
                    console.Run();
                    exit.TrySetResult("console closed");
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"{me}: console failed: {e}");
                    exit.TrySetResult("console failed");
                }
            }) { IsBackground = true, Name = $"{name} console" };
            loop.Start();
        }
        else if (StdinIsPipe())
        {
            var watcher = new Thread(() =>
            {
                try
                {
                    using var stdin = Console.OpenStandardInput();
                    var buf = new byte[256];
                    while (stdin.Read(buf) > 0) { }
                }
                catch (IOException) { }
                exit.TrySetResult("end of file on stdin");
            }) { IsBackground = true, Name = "stdin watcher" };
            watcher.Start();
        }

        string reason = exit.Task.GetAwaiter().GetResult();
        if (!s.Quiet) Console.Error.WriteLine($"{me}: exiting ({reason})");
        int rc = reason == "console failed" ? 1 : 0;
        try { module.Dispose(); }
        catch (CacheBusyException e)
        {
            Console.Error.WriteLine($"{me}: {e.Message}");
            rc = 1;
        }
        // Let the reply to an unload write reach its peer before the socket goes.
        Thread.Sleep(100);
        endpoint.Dispose();
        return rc;
    }

    /// <summary>True when stdin is a pipe or socket (a parent holding it): its end of file means "exit".</summary>
    private static bool StdinIsPipe()
    {
        if (!OperatingSystem.IsLinux() || !Console.IsInputRedirected) return false;
        try
        {
            string? target = new FileInfo("/proc/self/fd/0").LinkTarget;
            return target is not null && (target.StartsWith("pipe:", StringComparison.Ordinal) || target.StartsWith("socket:", StringComparison.Ordinal));
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}
