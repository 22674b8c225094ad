using System.Globalization;
using Slub.Sysfs;

namespace Slub.Cli.TestModules;

/// <summary>
/// The command syntax shared by the test modules' control files (the series' <c>smo/callfn</c>): one command
/// per write, one trailing newline ignored, words separated by single spaces (<c>strsep</c>), the command
/// matched exactly against a table, arguments base-10 integers (<c>kstrtol</c>) that must fit a C <c>int</c>,
/// -1 or a missing argument meaning the default. Every refusal is logged and returned to the writer.
/// </summary>
internal sealed class ControlFile
{
    /// <summary>One entry of a module's command table.</summary>
    public sealed record CommandSpec(string Name, string Usage, string[] ArgNames);

    /// <summary>The value a missing argument takes (the module's <c>SMO_CMD_DEFAUT_ARG</c>).</summary>
    public const long DefaultArg = -1;

    private readonly CommandSpec[] _table;
    private readonly string _prefix;
    private readonly Action<string> _log;

    /// <param name="path">The file's path on the endpoint, reported with every error.</param>
    /// <param name="prefix">The module's log prefix (<c>smo</c>, <c>smox</c>) used in its own messages.</param>
    /// <param name="table">The commands, in the module's order.</param>
    /// <param name="log">Where refusals are logged (the allocator's log).</param>
    public ControlFile(string path, string prefix, CommandSpec[] table, Action<string> log)
    {
        Path = path;
        _prefix = prefix;
        _table = table;
        _log = log;
    }

    /// <summary>The file's path on the endpoint.</summary>
    public string Path { get; }

    /// <summary>The commands and their syntax, for help texts.</summary>
    public IReadOnlyList<string> Usages => _table.Select(c => c.Usage).ToArray();

    /// <summary>Refuses an empty write (<c>EINVAL</c>, "empty command").</summary>
    public void RefuseEmpty(string text)
    {
        if (text.Length == 0) throw Refuse(Errno.EINVAL, "empty command");
    }

    /// <summary>
    /// Splits one command line into the command's name and its arguments (<see cref="DefaultArg"/> where
    /// missing). Refuses an unknown command, too many arguments, and words that are not numbers or do not
    /// fit an <c>int</c>.
    /// </summary>
    public (string Name, long[] Args) Parse(string text)
    {
        RefuseEmpty(text);
        if (text[^1] == '\n') text = text[..^1];
        string[] words = text.Split(' ');
        string cmd = words[0];
        var spec = _table.FirstOrDefault(c => c.Name == cmd)
                   ?? throw Refuse(Errno.EINVAL, $"failed to call function for cmd: {cmd}");
        int given = words.Length - 1;
        if (given > spec.ArgNames.Length)
            throw Refuse(Errno.EINVAL, $"{_prefix}: {cmd} takes at most {spec.ArgNames.Length} argument{(spec.ArgNames.Length == 1 ? "" : "s")}, got {given}, command not run. Usage: {spec.Usage}");
        var args = new long[spec.ArgNames.Length];
        Array.Fill(args, DefaultArg);
        for (int i = 0; i < given; i++) args[i] = ParseArg(cmd, words[i + 1]);
        return (cmd, args);
    }

    /// <summary>Logs <paramref name="message"/> and returns the exception that carries it to the writer.</summary>
    public SysfsException Refuse(Errno errno, string message)
    {
        _log(message);
        return new SysfsException(errno, Path, message);
    }

    // kstrtol(s, 10): optional sign, decimal digits, nothing else. The value must fit the module's int arguments.
    private long ParseArg(string cmd, string word)
    {
        int digits = word.StartsWith('+') || word.StartsWith('-') ? 1 : 0;
        if (word.Length == digits || word.AsSpan(digits).ContainsAnyExcept("0123456789"))
            throw Refuse(Errno.EINVAL, $"failed to convert arg, command not run. ({word})");
        if (!long.TryParse(word, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) || v < int.MinValue || v > int.MaxValue)
            throw Refuse(Errno.ERANGE, $"{_prefix}: {cmd}: number out of range, command not run. ({word})");
        return v;
    }

    /// <summary>
    /// <paramref name="value"/> unless it is outside 0..<paramref name="max"/> (and not the default), which
    /// is refused with <c>ERANGE</c>.
    /// </summary>
    public long CheckRange(string cmd, string name, long value, long max, string defaultText) => CheckRange(cmd, name, value, 0, max, defaultText);

    /// <summary><paramref name="value"/> unless it is outside <paramref name="min"/>..<paramref name="max"/> (and not the default), which is refused with <c>ERANGE</c>.</summary>
    public long CheckRange(string cmd, string name, long value, long min, long max, string defaultText)
    {
        if (value == DefaultArg) return value;
        if (value < min || value > max)
            throw Refuse(Errno.ERANGE, $"{_prefix}: {cmd}: {name} out of range: {value} ({min}..{max}, or -1 for {defaultText}), command not run");
        return value;
    }
}
