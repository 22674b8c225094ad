using System.CommandLine;

namespace Slub.Cli.Slabinfo;

/// <summary>
/// Registers <c>slub slabinfo</c> with System.CommandLine. The command declares no options of its own: its words are
/// handed unchanged to <see cref="SlabinfoTool"/>, whose getopt_long emulation must reproduce the kernel tool's
/// parsing byte for byte (bundled letters, <c>-dfz</c> optional arguments, prefix matching of long options, the
/// exact error lines and exit code 1). System.CommandLine's own parser would accept and reject different
/// spellings and print different messages, so it only routes the command here.
/// </summary>
internal static class SlabinfoCommand
{
    public static Command Create()
    {
        var words = new Argument<string[]>("args")
        {
            Description = "slabinfo options and pattern (see 'slub slabinfo -h'); plus --sysfs DIR, --pid PID, " +
                          "--compat smo|current, --json, --map CACHE",
            Arity = ArgumentArity.ZeroOrMore,
        };
        // 'slub slabinfo -h' is the C tool's usage, byte for byte, so the root help is where the additions are named.
        var cmd = new Command("slabinfo", "Report on slab caches like the kernel's slabinfo tool (SMO series version; " +
                                          "'slub slabinfo -h' lists its options). Ours besides: --sysfs DIR (an exported tree), " +
                                          "--pid PID (a live Slub.NET process), --compat smo|current, --json, --map CACHE.")
        {
            words,
        };
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(pr =>
        {
            // Every word after "slabinfo", options included, exactly as typed.
            var tokens = pr.Tokens.SkipWhile(t => t.Value != "slabinfo").Skip(1).Select(t => t.Value).ToList();
            return SlabinfoTool.Run(tokens, Console.Out, Console.Error);
        });
        return cmd;
    }
}
