using static Slub.Cli.Slabinfo.CFormat;

namespace Slub.Cli.Slabinfo;

/// <summary>The -T summary text (every number goes through store_size, ratios included).</summary>
internal static class TotalsWriter
{
    public static void Totals(SlabinfoRun run)
    {
        var t = TotalsSummary.Compute(run.Tree, run.PageSize, out var empty);
        var w = run.Out;
        if (t is null)
        {
            w.Write(empty);
            return;
        }
        string S(ulong v) => Right(run.Size(v), 15);
        void Four(string label, Spread x) => w.Write($"{label}{S(x.Average)}  {S(x.Min)}  {S(x.Max)}  {S(x.Total)}\n");
        void Percent(string label, Spread x) => w.Write($"{label}{S(x.Average)}% {S(x.Min)}% {S(x.Max)}% {S(x.Total)}%\n");
        void Three(string label, Spread x) => w.Write($"{label}{S(x.Average)}  {S(x.Min)}  {S(x.Max)}\n");

        w.Write("Slabcache Totals\n");
        w.Write("----------------\n");
        w.Write($"Slabcaches : {Num(t.Caches, 15)}   Aliases  : {Num(t.Aliases, 11)}->{Left(Num(t.AliasTargets), 3)}  Active:    {Num(t.Active, 3)}\n");
        w.Write($"Memory used: {S(t.Memory.Total)}   # Loss   : {S(t.Loss.Total)}   MRatio:{Right(run.Size(t.MemoryRatio), 6)}%\n");
        w.Write($"# Objects  : {S(t.Objects.Total)}   # PartObj: {S(t.PartialObjects.Total)}   ORatio:{Right(run.Size(t.ObjectRatio), 6)}%\n");
        w.Write("\n");
        w.Write("Per Cache         Average              Min              Max            Total\n");
        w.Write(new string('-', 76) + "\n");
        Four("#Objects  ", t.Objects);
        Four("#Slabs    ", t.Slabs);
        Four("#PartSlab ", t.PartialSlabs);
        Percent("%PartSlab", t.PartialSlabPercent);
        Four("PartObjs  ", t.PartialObjects);
        Percent("% PartObj", t.PartialObjectPercent);
        Four("Memory    ", t.Memory);
        Four("Used      ", t.Used);
        Four("Loss      ", t.Loss);
        w.Write("\n");
        w.Write("Per Object        Average              Min              Max\n");
        w.Write(new string('-', 59) + "\n");
        Three("Memory    ", t.ObjectMemory);
        Three("User      ", t.ObjectUser);
        Three("Loss      ", t.ObjectLoss);
    }
}
