namespace Slub.Cli.Slabinfo;

/// <summary>Which version of the kernel tool to behave as.</summary>
public enum SlabinfoDialect
{
    /// <summary>Linux 5.2's tools/vm/slabinfo.c plus the SMO series' patches 02, 05 and 06 (the default).</summary>
    Smo,
    /// <summary>Today's tools/mm/slabinfo.c.</summary>
    Current,
}

/// <summary>The per-dialect option tables.</summary>
public static class SlabinfoDialects
{
    /// <summary>getopt short-option string of each dialect.</summary>
    public static string OptionString(SlabinfoDialect d) =>
        d == SlabinfoDialect.Smo ? "aACd::Defhil1MnoprstvzTSN:LXBU" : "aABd::DefhilLnN:oPrsStTUvXz1";

    /// <summary>Long options, in each dialect's table order (it decides the order of ambiguity messages).</summary>
    public static IReadOnlyList<LongOption> LongOptions(SlabinfoDialect d) => d == SlabinfoDialect.Smo ? Smo : Current;

    private static readonly LongOption[] Smo =
    [
        new("ctor", ArgumentMode.None, 'C'), new("movable", ArgumentMode.None, 'M'),
        new("aliases", ArgumentMode.None, 'a'), new("activity", ArgumentMode.None, 'A'),
        new("debug", ArgumentMode.Optional, 'd'), new("display-activity", ArgumentMode.None, 'D'),
        new("empty", ArgumentMode.None, 'e'), new("first-alias", ArgumentMode.None, 'f'),
        new("help", ArgumentMode.None, 'h'), new("inverted", ArgumentMode.None, 'i'),
        new("slabs", ArgumentMode.None, 'l'), new("numa", ArgumentMode.None, 'n'),
        new("ops", ArgumentMode.None, 'o'), new("shrink", ArgumentMode.None, 's'),
        new("report", ArgumentMode.None, 'r'), new("Size", ArgumentMode.None, 'S'),
        new("tracking", ArgumentMode.None, 't'), new("Totals", ArgumentMode.None, 'T'),
        new("validate", ArgumentMode.None, 'v'), new("zero", ArgumentMode.None, 'z'),
        new("1ref", ArgumentMode.None, '1'), new("lines", ArgumentMode.Required, 'N'),
        new("Loss", ArgumentMode.None, 'L'), new("Xtotals", ArgumentMode.None, 'X'),
        new("Bytes", ArgumentMode.None, 'B'), new("Unreclaim", ArgumentMode.None, 'U'),
    ];

    // "partial" maps to 'p', which the current tool has no case for: --partial dies with "Invalid option '\0'".
    private static readonly LongOption[] Current =
    [
        new("aliases", ArgumentMode.None, 'a'), new("activity", ArgumentMode.None, 'A'),
        new("Bytes", ArgumentMode.None, 'B'), new("debug", ArgumentMode.Optional, 'd'),
        new("display-activity", ArgumentMode.None, 'D'), new("empty", ArgumentMode.None, 'e'),
        new("first-alias", ArgumentMode.None, 'f'), new("help", ArgumentMode.None, 'h'),
        new("inverted", ArgumentMode.None, 'i'), new("slabs", ArgumentMode.None, 'l'),
        new("Loss", ArgumentMode.None, 'L'), new("numa", ArgumentMode.None, 'n'),
        new("lines", ArgumentMode.Required, 'N'), new("ops", ArgumentMode.None, 'o'),
        new("partial", ArgumentMode.None, 'p'), new("report", ArgumentMode.None, 'r'),
        new("shrink", ArgumentMode.None, 's'), new("Size", ArgumentMode.None, 'S'),
        new("tracking", ArgumentMode.None, 't'), new("Totals", ArgumentMode.None, 'T'),
        new("Unreclaim", ArgumentMode.None, 'U'), new("validate", ArgumentMode.None, 'v'),
        new("Xtotals", ArgumentMode.None, 'X'), new("zero", ArgumentMode.None, 'z'),
        new("1ref", ArgumentMode.None, '1'),
    ];
}
