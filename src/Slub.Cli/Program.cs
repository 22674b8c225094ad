using System.CommandLine;

namespace Slub.Cli;

/// <summary>Entry point of the <c>slub</c> command: one subcommand per tool, each in its own folder.</summary>
public static class Program
{
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Slub.NET: the SLUB slab allocator with Slab Movable Objects, in user space.");
        root.Subcommands.Add(Demo.DemoCommand.Create());
        root.Subcommands.Add(Replay.ReplayCommand.Create());
        return root;
    }
}
