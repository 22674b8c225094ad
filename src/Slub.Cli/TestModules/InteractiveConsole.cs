using Slub.Sysfs;
using Spectre.Console;

namespace Slub.Cli.TestModules;

/// <summary>
/// The <c>--interactive</c> console of <c>slub test-module smo|xarray</c>: reads the module's commands from
/// stdin, runs each exactly as a write to its control file would, and prints the module's new log lines and
/// its caches' figures (the numbers the series' Python suite checks) after each one.
/// </summary>
internal sealed class InteractiveConsole
{
    private readonly IHostedModule _module;
    private readonly SlabAllocator _allocator;
    private readonly string _socket;
    private readonly IAnsiConsole _out;
    private int _logSeen;

    public InteractiveConsole(IHostedModule module, SlabAllocator allocator, string socket, IAnsiConsole? output = null)
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
        string caches = string.Join(", ", _module.Caches.Select(c => $"[green]{Markup.Escape(c.Name)}[/]"));
        _out.MarkupLine($"[bold]{Markup.Escape(_module.Title)}[/]: cache{(_module.Caches.Count == 1 ? "" : "s")} {caches}, slub_debug {Markup.Escape(DebugText())}, live endpoint {Markup.Escape(_socket)}");
        _out.MarkupLine("Type [bold]help[/] for the commands.");
        _logSeen = _allocator.Log.Lines().Length;
        ShowLog();
        ShowState();
        while (true)
        {
            _out.Markup($"[bold]{Markup.Escape(_module.Directory)}>[/] ");
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
                foreach (var c in _module.Caches) Run(() => c.Shrink(), $"{c.Name}/shrink");
                return true;
        }
        Run(() => _module.Write(line), _module.ControlPath);
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
        foreach (var c in _module.Caches) ShowCache(c);
        _out.MarkupLine($"  {Markup.Escape(_module.Summary())}");
    }

    private void ShowCache(KmemCache c)
    {
        if (!_allocator.Caches.Contains(c)) { _out.MarkupLine($"[grey]({Markup.Escape(c.Name)}: cache destroyed)[/]"); return; }
        var st = c.GetStatistics();
        _out.MarkupLine($"  [bold]{Markup.Escape(c.Name)}[/]: objects [bold]{st.Objects}[/] of {st.TotalObjects} {Plural.Noun(st.TotalObjects, "slot")}, " +
                        $"slabs [bold]{st.Slabs}[/] (full {st.Slabs - st.Partial}, partial {st.Partial}, cpu {st.CpuSlabs})");
        _out.MarkupLine($"  objs_per_slab {st.ObjectsPerSlab}, movable {(c.IsMovable ? "[green]yes[/]" : "no")}");
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
        foreach (var (command, what) in _module.Help) Row(command, what);
        Row("shrink", "write 1 to the shrink file of " + string.Join(", then ", _module.Caches.Select(c => c.Name)) + " (what slabinfo CACHE -s does)");
        Row("stats | objects | log", "show the figures / the module's objects / the whole log");
        Row("help | quit", "this table / unload the module and exit");
        _out.Write(t);
        _out.MarkupLine($"The first {_module.Help.Count} are the module's commands: the same text written to {Markup.Escape(_module.ControlPath)} does the same.");
    }

    private string DebugText()
    {
        var c = _module.Caches[0];
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
