namespace Slub.Tests.Dcache;

/// <summary>A throwaway directory tree under the temp directory, deleted on dispose.</summary>
internal sealed class TempTree : IDisposable
{
    public string Root { get; }

    public TempTree()
    {
        Root = Path.Combine(Path.GetTempPath(), "slub-dcache-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Full(string rel) => Path.Join(Root, rel);

    public void Dir(string rel) => Directory.CreateDirectory(Full(rel));

    public void File(string rel)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Full(rel))!);
        System.IO.File.WriteAllText(Full(rel), rel);
    }

    /// <summary>A small tree: nested directories, files, a long (external) name, a non-ASCII name.</summary>
    public static TempTree Standard()
    {
        var t = new TempTree();
        t.File("a/b/c/leaf.txt");
        t.File("a/b/other.txt");
        t.File("a/x.txt");
        t.Dir("empty");
        t.File("docs/" + new string('n', 60) + ".md");
        t.File("docs/ünïcødé-名前.txt");
        t.File("top.txt");
        return t;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
