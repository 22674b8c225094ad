using System.CommandLine;

namespace Slub.Cli;

/// <summary>Entry point of the <c>slub</c> command: one subcommand per tool, each in its own folder.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // slabinfo must parse its words exactly like the kernel tool's getopt_long (including -h, --help, "--" and
        // words starting with '@', which System.CommandLine would take as help or response files), so its words
        // bypass System.CommandLine; the registered command below documents it in "slub --help".
        if (args.Length > 0 && args[0] == "slabinfo")
            return Slabinfo.SlabinfoTool.Run(args[1..], Console.Out, Console.Error);
        return BuildRoot().Parse(args).Invoke();
    }

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Slub.NET: the SLUB slab allocator with Slab Movable Objects, in user space.");
        root.Subcommands.Add(Demo.DemoCommand.Create());
        root.Subcommands.Add(Slabinfo.SlabinfoCommand.Create());
        root.Subcommands.Add(TestModules.TestModuleCommand.Create());
        root.Subcommands.Add(Replay.ReplayCommand.Create());
        return root;
    }
}
