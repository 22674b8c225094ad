namespace Slub.Cli.Slabinfo;

/// <summary>Whether a long option takes an argument (getopt's no_argument / required_argument / optional_argument).</summary>
public enum ArgumentMode { None, Required, Optional }

/// <summary>A long option: its name, argument mode, and the short option character it stands for.</summary>
public sealed record LongOption(string Name, ArgumentMode Argument, char Value);

/// <summary>
/// A reimplementation of GNU <c>getopt_long</c> for one argument vector, so that option parsing behaves — and fails —
/// exactly like the C tool: bundled short options (<c>-zBL</c>), optional arguments only when attached
/// (<c>-dfz</c>, <c>--debug=fz</c>), required arguments attached or in the next word, unique-prefix long options,
/// argument permutation (operands may appear anywhere; <c>--</c> ends options; <c>POSIXLY_CORRECT</c> stops at the
/// first operand), and glibc's diagnostics on the error writer.
/// </summary>
public sealed class Getopt
{
    private readonly string _program;
    private readonly IReadOnlyList<string> _args;
    private readonly string _optstring;
    private readonly IReadOnlyList<LongOption> _longOptions;
    private readonly TextWriter _error;
    private readonly List<string> _operands = [];
    private readonly bool _stopAtOperand;
    private int _index;
    private string? _cluster;  // remaining characters of a short-option word
    private bool _finished;

    /// <param name="program">argv[0], used as the message prefix.</param>
    /// <param name="args">The arguments after argv[0].</param>
    /// <param name="optstring">Short options: a letter, "x:" required argument, "x::" optional argument.</param>
    /// <param name="longOptions">Long options in table order (the order ambiguity messages list them in).</param>
    /// <param name="error">Where getopt's own diagnostics go.</param>
    public Getopt(string program, IReadOnlyList<string> args, string optstring, IReadOnlyList<LongOption> longOptions,
        TextWriter error)
    {
        _program = program;
        _args = args;
        _optstring = optstring;
        _longOptions = longOptions;
        _error = error;
        _stopAtOperand = optstring.StartsWith('+') || Environment.GetEnvironmentVariable("POSIXLY_CORRECT") is not null;
    }

    /// <summary>The argument of the option just returned, or null.</summary>
    public string? OptArg { get; private set; }

    /// <summary>The option character that caused the last error ('\0' for an unknown or ambiguous long option).</summary>
    public char OptOpt { get; private set; }

    /// <summary>The non-option arguments in their original order; complete once <see cref="Next"/> returned -1.</summary>
    public IReadOnlyList<string> Operands => _operands;

    /// <summary>Returns the next option character, '?' after printing a diagnostic, or -1 when options are exhausted.</summary>
    public int Next()
    {
        OptArg = null;
        if (_cluster is { Length: > 0 })
            return Short();
        if (_finished)
            return -1;
        while (_index < _args.Count)
        {
            var arg = _args[_index];
            if (arg == "--")
            {
                _index++;
                Finish();
                return -1;
            }
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                _index++;
                return Long(arg[2..]);
            }
            if (arg.Length > 1 && arg[0] == '-')
            {
                _index++;
                _cluster = arg[1..];
                return Short();
            }
            if (_stopAtOperand)
            {
                Finish();
                return -1;
            }
            _operands.Add(arg);
            _index++;
        }
        _finished = true;
        return -1;
    }

    private void Finish()
    {
        for (; _index < _args.Count; _index++)
            _operands.Add(_args[_index]);
        _finished = true;
    }

    private int Short()
    {
        var c = _cluster![0];
        var rest = _cluster[1..];
        _cluster = rest;
        var at = c == ':' ? -1 : _optstring.IndexOf(c);
        if (at < 0)
        {
            _error.Write($"{_program}: invalid option -- '{c}'\n");
            OptOpt = c;
            return '?';
        }
        var colons = CountColons(at);
        if (colons == 2)
        {
            OptArg = rest.Length > 0 ? rest : null;
            _cluster = null;
        }
        else if (colons == 1)
        {
            _cluster = null;
            if (rest.Length > 0)
            {
                OptArg = rest;
            }
            else if (_index < _args.Count)
            {
                OptArg = _args[_index++];
            }
            else
            {
                _error.Write($"{_program}: option requires an argument -- '{c}'\n");
                OptOpt = c;
                return '?';
            }
        }
        return c;
    }

    private int CountColons(int at)
    {
        var n = 0;
        while (at + 1 + n < _optstring.Length && _optstring[at + 1 + n] == ':' && n < 2)
            n++;
        return n;
    }

    private int Long(string text)
    {
        var eq = text.IndexOf('=');
        var name = eq < 0 ? text : text[..eq];
        LongOption? found = _longOptions.FirstOrDefault(o => o.Name == name);
        if (found is null)
        {
            var candidates = _longOptions.Where(o => o.Name.StartsWith(name, StringComparison.Ordinal)).ToList();
            if (candidates.Count > 1 && candidates.Any(o => o != candidates[0]))
            {
                _error.Write($"{_program}: option '--{text}' is ambiguous; possibilities:");
                foreach (var o in candidates)
                    _error.Write($" '--{o.Name}'");
                _error.Write("\n");
                OptOpt = '\0';
                return '?';
            }
            found = candidates.Count > 0 ? candidates[0] : null;
        }
        if (found is null)
        {
            _error.Write($"{_program}: unrecognized option '--{text}'\n");
            OptOpt = '\0';
            return '?';
        }
        if (eq >= 0)
        {
            if (found.Argument == ArgumentMode.None)
            {
                _error.Write($"{_program}: option '--{found.Name}' doesn't allow an argument\n");
                OptOpt = found.Value;
                return '?';
            }
            OptArg = text[(eq + 1)..];
        }
        else if (found.Argument == ArgumentMode.Required)
        {
            if (_index < _args.Count)
            {
                OptArg = _args[_index++];
            }
            else
            {
                _error.Write($"{_program}: option '--{found.Name}' requires an argument\n");
                OptOpt = found.Value;
                return '?';
            }
        }
        return found.Value;
    }
}
