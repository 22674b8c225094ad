namespace Slub.Cli.Slabinfo;

/// <summary>The -h text of each dialect.</summary>
internal static class UsageText
{
    public static string For(SlabinfoDialect dialect)
    {
        var smo = dialect == SlabinfoDialect.Smo;
        var sb = new System.Text.StringBuilder();
        sb.Append(smo
            ? "slabinfo 4/15/2017. (c) 2007 sgi/(c) 2011 Linux Foundation/(c) 2017 Jump Trading LLC.\n\n"
            : "slabinfo 4/15/2011. (c) 2007 sgi/(c) 2011 Linux Foundation.\n\n");
        sb.Append(smo
            ? "slabinfo [-aACDefhilMnosrStTvz1LXBU] [N=K] [-dafzput] [slab-regexp]\n"
            : "slabinfo [-aABDefhilLnoPrsStTUvXz1] [N=K] [-dafzput] [slab-regexp]\n");
        (string Option, string Text)[] lines =
        [
            ("-a|--aliases", "Show aliases"),
            ("-A|--activity", "Most active slabs first"),
            ("-B|--Bytes", "Show size in bytes"),
            ("-C|--ctor", "Show slabs with ctors"),
            ("-D|--display-active", "Switch line format to activity"),
            ("-e|--empty", "Show empty slabs"),
            ("-f|--first-alias", "Show first alias"),
            ("-h|--help", "Show usage information"),
            ("-i|--inverted", "Inverted list"),
            ("-l|--slabs", "Show slabs"),
            ("-L|--Loss", "Sort by loss"),
            ("-M|--movable", "Show caches that support movable objects"),
            ("-n|--numa", "Show NUMA information"),
            ("-N|--lines=K", "Show the first K slabs"),
            ("-o|--ops", "Show kmem_cache_ops"),
            ("-P|--partial", "Sort by number of partial slabs"),
            ("-r|--report", "Detailed report on single slabs"),
            ("-s|--shrink", "Shrink slabs"),
            ("-S|--Size", "Sort by size"),
            ("-t|--tracking", "Show alloc/free information"),
            ("-T|--Totals", "Show summary information"),
            ("-U|--Unreclaim", "Show unreclaimable slabs only"),
            ("-v|--validate", "Validate slabs"),
            ("-X|--Xtotals", "Show extended summary information"),
            ("-z|--zero", "Include empty slabs"),
            ("-1|--1ref", "Single reference"),
        ];
        foreach (var (option, text) in lines)
        {
            var letter = option[1];
            if (smo && letter is 'P' or 'X')
                continue;
            if (!smo && letter is 'C' or 'M')
                continue;
            sb.Append(option.PadRight(23)).Append(text).Append('\n');
        }
        if (smo)
            sb.Append("-X|--Xtotals".PadRight(23)).Append("Show extended summary information\n");
        sb.Append('\n');
        sb.Append("-d  | --debug          Switch off all debug options\n");
        sb.Append("-da | --debug=a        Switch on all debug options (--debug=FZPU)\n");
        sb.Append('\n');
        sb.Append("-d[afzput] | --debug=[afzput]\n");
        sb.Append("    f | F              Sanity Checks (SLAB_CONSISTENCY_CHECKS)\n");
        sb.Append("    z | Z              Redzoning\n");
        sb.Append("    p | P              Poisoning\n");
        sb.Append("    u | U              Tracking\n");
        sb.Append("    t | T              Tracing\n");
        if (!smo)
            sb.Append("\nSorting options (--Loss, --Size, --Partial) are mutually exclusive\n");
        return sb.ToString();
    }
}
