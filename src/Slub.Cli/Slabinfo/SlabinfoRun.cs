namespace Slub.Cli.Slabinfo;

/// <summary>The state of one slabinfo invocation, shared by the writers (the C tool keeps it in globals).</summary>
internal sealed class SlabinfoRun(SlabinfoSettings settings, ISlabSource source, SlabTree tree, int pageSize,
    TextWriter output, TextWriter error)
{
    public SlabinfoSettings Settings { get; } = settings;
    public ISlabSource Source { get; } = source;
    public SlabTree Tree { get; } = tree;
    public int PageSize { get; } = pageSize;
    public TextWriter Out { get; } = output;
    public TextWriter Err { get; } = error;

    /// <summary>The tool's global <c>line</c>: rows printed so far; 0 means the next row prints a header first.
    /// It is shared by the listing and the NUMA output and is only reset by -X.</summary>
    public int Line { get; set; }

    public bool IsSmo => Settings.Dialect == SlabinfoDialect.Smo;

    public string Size(ulong value) => SizeFormatter.StoreSize(value, Settings.ShowBytes);

    /// <summary>set_obj(): writes "%d\n" to name/attribute, dying with the tool's message when the file cannot be
    /// opened. A value the file refuses is ignored, as the C tool ignores the result of its fclose().</summary>
    public void SetObj(SlabCache s, string attribute, int value)
    {
        try
        {
            Source.WriteAttribute(s.Name, attribute, $"{value}\n");
        }
        catch (SlabSourceException e) when (e.ValueRefused)
        {
        }
        catch (SlabSourceException)
        {
            throw new SlabinfoFatalException($"Cannot write to {s.Name}/{attribute}\n");
        }
    }
}
