using Slub.Sysfs;
using Spectre.Console;

namespace Slub.Cli.TestModules;

/// <summary>
/// The <c>--interactive</c> console of <c>slub test-module smo</c>: reads the module's commands from stdin,
/// runs each exactly as a write to <c>smo/callfn</c> would, and prints the module's new log lines and the
/// cache's figures (the numbers the series' Python suite checks) after each one.
/// </summary>
internal sealed class InteractiveConsole
{
    private readonly SmoTestModule _module;
    private readonly SlabAllocator _allocator;
    private readonly string _socket;
    private readonly IAnsiConsole _out;
    private int _logSeen;

    public InteractiveConsole(SmoTestModule module, SlabAllocator allocator, string socket, IAnsiConsole? output = null)
    {
        _module = module;
        _allocator = allocator;
        _socket = socket;
        _out = output ?? AnsiConsole.Console;
        // Piped output: no terminal width to respect, so do not wrap messages in the middle.
        if (output is null && Console.IsOutputRedirected) _out.Profile.Width = 1000;
    }

    /// <summary>Reads commands until end of input or <c>quit</c>.</summary>
    public void Run()
    {
        _out.MarkupLine($"[bold]SMO test module[/]: cache [green]{SmoTestModule.CacheName}[/], slub_debug {Markup.Escape(DebugText())}, live endpoint {Markup.Escape(_socket)}");
        _out.MarkupLine("Type [bold]help[/] for the commands.");
        _logSeen = _allocator.Log.Lines().Length;
        ShowLog();
        ShowState();
        while (true)
        {
            _out.Markup("[bold]smo>[/] ");
            string? line = Console.In.ReadLine();
            if (line is null) { _out.WriteLine(); return; }
            line = line.Trim();
            if (line.Length == 0) continue;
            if (!Execute(line)) return;
        }
    }

    /// <summary>Runs one typed line; false means quit.</summary>
    public bool Execute(string line)
    {
        switch (line)
        {
            case "quit" or "exit":
                return false;
            case "help" or "?":
                ShowHelp();
                return true;
            case "stats":
                ShowState();
                return true;
            case "log":
                foreach (string l in _allocator.Log.Lines()) _out.WriteLine(l);
                _logSeen = _allocator.Log.Lines().Length;
                return true;
            case "objects":
                _out.Write(_module.DescribeObjects());
                return true;
            case "shrink":
                Run(() => _module.Cache.Shrink(), $"{SmoTestModule.CacheName}/shrink");
                return true;
        }
        Run(() => _module.Write(line), SmoTestModule.CallfnPath);
        return true;
    }

    private void Run(Action action, string what)
    {
        try
        {
            action();
            ShowLog();
            _out.MarkupLine($"[green]ok[/] [grey]({Markup.Escape(what)})[/]");
        }
        catch (Exception e) when (e is SysfsException or InvalidFreeException or DefragmentationException or CacheBusyException)
        {
            ShowLog();
            string code = e is SysfsException se ? se.Errno.ToString() : e.GetType().Name;
            _out.MarkupLine($"[red]error {code}[/]: {Markup.Escape(e.Message)}");
        }
        ShowState();
    }

    private void ShowLog()
    {
        string[] lines = _allocator.Log.Lines();
        // The log keeps its last lines only; when it wrapped, show what is there.
        int from = _logSeen <= lines.Length ? _logSeen : 0;
        for (int i = from; i < lines.Length; i++) _out.MarkupLine($"  [yellow]log:[/] {Markup.Escape(lines[i])}");
        _logSeen = lines.Length;
    }

    private void ShowState()
    {
        var c = _module.Cache;
        if (!_allocator.Caches.Contains(c)) { _out.MarkupLine("[grey](cache destroyed)[/]"); return; }
        var st = c.GetStatistics();
        _out.MarkupLine($"  [bold]{SmoTestModule.CacheName}[/]: objects [bold]{st.Objects}[/] of {st.TotalObjects} slots, " +
                        $"slabs [bold]{st.Slabs}[/] (full {st.Slabs - st.Partial}, partial {st.Partial}, cpu {st.CpuSlabs})");
        _out.MarkupLine($"  objs_per_slab {st.ObjectsPerSlab}, movable {(c.IsMovable ? "[green]yes[/]" : "no")}, listed by the module {_module.ListedObjects}");
        var occupancy = c.SlabOccupancy();
        if (occupancy.Count > 0)
        {
            const int show = 16;
            string slabs = string.Join(" ", occupancy.Take(show).Select(o => $"N{o.Node}:{o.Inuse}/{o.Objects}"));
            if (occupancy.Count > show) slabs += $" … ({occupancy.Count - show} more)";
            _out.MarkupLine($"  slabs (partial first): {Markup.Escape(slabs)}");
        }
    }

    private void ShowHelp()
    {
        var t = new Table().Border(TableBorder.Simple).AddColumns("command", "what it does");
        void Row(string command, string what) => t.AddRow(Markup.Escape(command), Markup.Escape(what));
        Row("enable", "make smo_test movable (set up the migrate callback)");
        Row("alloc [N [NODE]]", "allocate N objects (default 1), on NODE if given; appended to the module's list");
        Row("free [N [POS]]", "free N objects (default 1; 0 = all) starting at list position POS (default 0, the oldest)");
        Row("test [NR [KEEP]]", "the module's self test: NR objects (1000), keep every KEEP-th (10), shrink, check ids");
        Row("shrink", "write 1 to smo_test/shrink (what slabinfo smo_test -s does)");
        Row("stats | objects | log", "show the figures / the module's list / the whole log");
        Row("help | quit", "this table / unload the module and exit");
        _out.Write(t);
        _out.MarkupLine("The first four are the module's commands: the same text written to smo/callfn does the same.");
    }

    private string DebugText()
    {
        var c = _module.Cache;
        if (!c.IsDebug) return "off (per-CPU slabs in use: counts differ from the series')";
        var letters = "";
        if ((c.Flags & SlabFlags.ConsistencyChecks) != 0) letters += "F";
        if ((c.Flags & SlabFlags.RedZone) != 0) letters += "Z";
        if ((c.Flags & SlabFlags.Poison) != 0) letters += "P";
        if ((c.Flags & SlabFlags.StoreUser) != 0) letters += "U";
        if ((c.Flags & SlabFlags.Trace) != 0) letters += "T";
        return letters + " (no per-CPU slabs, as the series' numbers assume)";
    }
}
