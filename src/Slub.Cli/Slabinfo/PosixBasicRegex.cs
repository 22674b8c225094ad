using System.Text;
using System.Text.RegularExpressions;

namespace Slub.Cli.Slabinfo;

/// <summary>A pattern that glibc's <c>regcomp</c> would refuse; <see cref="Code"/> is the REG_* number it returns.</summary>
public sealed class BrePatternException(int code, string message) : Exception(message)
{
    public int Code { get; } = code;
}

/// <summary>
/// Translates a POSIX basic regular expression, compiled the way slabinfo compiles it
/// (<c>regcomp(REG_ICASE | REG_NOSUB)</c> with glibc), into an equivalent .NET <see cref="Regex"/>.
/// </summary>
/// <remarks>
/// In a BRE the operators are the escaped forms <c>\( \) \{ \} \| \+ \?</c>, and the plain characters
/// <c>( ) { } | + ?</c> are literals — the opposite of .NET. glibc details that are reproduced (each was checked
/// against glibc's regcomp/regexec):
/// <list type="bullet">
/// <item><c>*</c> is a literal at the start of the expression, after <c>\(</c>, <c>\|</c> or a leading <c>^</c>;
/// <c>\+</c> and <c>\?</c> are literals there too, while <c>\{</c> there is error 13 (REG_BADRPT).</item>
/// <item>After a repetition, another <c>*</c> or <c>\{</c> is error 13; <c>\+</c> and <c>\?</c> may follow.</item>
/// <item><c>^</c> is an anchor only at the start (of the expression, after <c>\(</c> or <c>\|</c>); <c>$</c> only
/// at the end (of the expression, before <c>\)</c> or <c>\|</c>). Elsewhere they are literals.</item>
/// <item>REG_ICASE folds to upper case: range ends are folded before they are compared (so <c>[Z-a]</c> is error 11),
/// and an escaped lower-case letter that is not an operator (<c>\m</c>) matches nothing.</item>
/// <item>GNU escapes <c>\w \W \s \S \b \B \&lt; \&gt; \` \'</c> and back-references <c>\1</c>..<c>\9</c>.</item>
/// <item>Error numbers: 3 ECOLLATE, 4 ECTYPE, 5 EESCAPE, 6 ESUBREG, 7 EBRACK, 8 EPAREN, 9 EBRACE, 10 BADBR,
/// 11 ERANGE, 13 BADRPT, 15 ESIZE.</item>
/// </list>
/// The match is unanchored, as <c>regexec</c> is.
/// </remarks>
public static class PosixBasicRegex
{
    /// <summary>glibc's RE_DUP_MAX.</summary>
    public const int DuplicateMax = 0x7fff;

    /// <summary>Compiles <paramref name="pattern"/>; throws <see cref="BrePatternException"/> for a bad pattern.</summary>
    public static Regex Compile(string pattern) =>
        new(Translate(pattern), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline);

    /// <summary>The .NET pattern equivalent to the BRE <paramref name="pattern"/> (to be used with IgnoreCase and Singleline).</summary>
    public static string Translate(string pattern) => new Translator(pattern).Run();

    private sealed class Translator(string p)
    {
        private readonly StringBuilder _out = new();
        private int _i;
        private int _openGroups;
        private int _groupCount;
        // Back-references follow glibc's visibility rule: \n is valid only once group n has closed in the
        // current alternative (or before the alternation began). Each \( opens an alternation scope: the groups
        // completed when it opened, the union of its finished branches, and its own group number.
        private int _completed;
        private readonly Stack<(int Start, int Initial, int Accum, int Group)> _groups = new();
        private int _atomStart = -1;       // output index where the last atom begins, -1 if none
        private bool _lastWasRepeat;
        private bool _caretIsAnchor = true; // only the first '^' of a branch anchors

        public string Run()
        {
            while (_i < p.Length)
            {
                var c = p[_i++];
                var wasCaretAnchor = _caretIsAnchor;
                _caretIsAnchor = false;
                switch (c)
                {
                    case '\\':
                        Escape();
                        break;
                    case '^' when wasCaretAnchor:
                        _out.Append('^');
                        break;
                    case '$' when AtEndOfBranch():
                        _out.Append(@"\z");
                        _atomStart = -1;
                        _lastWasRepeat = false;
                        break;
                    case '*':
                        if (_atomStart < 0)
                            Literal('*');
                        else
                            Repeat("*", breaksChain: true);
                        break;
                    case '.':
                        Atom(".");
                        break;
                    case '[':
                        Atom(Bracket());
                        break;
                    default:
                        Literal(c);
                        break;
                }
            }
            if (_openGroups > 0)
                throw Error(8, "unmatched \\(");
            return _out.ToString();
        }

        private bool AtEndOfBranch() =>
            _i == p.Length || (p[_i] == '\\' && _i + 1 < p.Length && (p[_i + 1] == ')' || p[_i + 1] == '|'));

        private void Escape()
        {
            if (_i == p.Length)
                throw Error(5, "trailing backslash");
            var c = p[_i++];
            switch (c)
            {
                case '(':
                    _groups.Push((_out.Length, _completed, 0, ++_groupCount));
                    _out.Append('(');
                    _openGroups++;
                    NewBranch();
                    break;
                case ')':
                    if (_openGroups == 0)
                        throw Error(8, "unmatched \\)");
                    _openGroups--;
                    _out.Append(')');
                    var g = _groups.Pop();
                    _completed |= g.Accum | (g.Group <= 9 ? 1 << g.Group : 0);
                    _atomStart = g.Start;
                    _lastWasRepeat = false;
                    break;
                case '|':
                    _out.Append('|');
                    if (_groups.Count > 0)
                    {
                        var top = _groups.Pop();
                        _groups.Push(top with { Accum = top.Accum | _completed });
                        _completed = top.Initial;
                    }
                    else
                    {
                        _completed = 0;   // a top-level branch sees no group of the branches before it
                    }
                    NewBranch();
                    break;
                case '{':
                    if (_atomStart < 0)
                        throw Error(13, "repetition with nothing before it");
                    if (_lastWasRepeat)
                        throw Error(13, "repetition after a repetition");
                    Interval();
                    break;
                case '+' or '?':
                    if (_atomStart < 0)
                        Literal(c);
                    else
                        Repeat(c.ToString(), breaksChain: false);
                    break;
                case >= '1' and <= '9':
                    var n = c - '0';
                    if ((_completed & (1 << n)) == 0)
                        throw Error(6, $"back-reference \\{n} to a group that is not complete in this alternative");
                    Atom($@"\k<{n}>");
                    break;
                case 'w': Atom("[A-Za-z0-9_]"); break;
                case 'W': Atom("[^A-Za-z0-9_]"); break;
                case 's': Atom(@"[ \t\n\r\f\v]"); break;
                case 'S': Atom(@"[^ \t\n\r\f\v]"); break;
                case 'b': Anchor(@"\b"); break;
                case 'B': Anchor(@"\B"); break;
                case '<': Anchor(@"\b(?=\w)"); break;
                case '>': Anchor(@"\b(?<=\w)"); break;
                case '`': Anchor(@"\A"); break;
                case '\'': Anchor(@"\z"); break;
                case >= 'a' and <= 'z':
                    // glibc keeps the letter's case while folding the subject to upper case: it can never match.
                    Atom("(?!)");
                    break;
                default:
                    Literal(c);
                    break;
            }
        }

        private void NewBranch()
        {
            _caretIsAnchor = true;
            _atomStart = -1;
            _lastWasRepeat = false;
        }

        private void Anchor(string text)
        {
            _out.Append(text);
            _atomStart = -1;
            _lastWasRepeat = false;
        }

        private void Literal(char c) => Atom(EscapeChar(c));

        private void Atom(string text)
        {
            _atomStart = _out.Length;
            _out.Append(text);
            _lastWasRepeat = false;
        }

        // Applies a repetition to the last atom. A second repetition wraps the first in a group, because .NET
        // refuses "a*+" style nesting while glibc repeats the repeated atom.
        private void Repeat(string quantifier, bool breaksChain)
        {
            if (_lastWasRepeat)
            {
                if (breaksChain)
                    throw Error(13, "repetition after a repetition");
                _out.Insert(_atomStart, "(?:");
                _out.Append(')');
            }
            _out.Append(quantifier);
            _lastWasRepeat = true;
        }

        private enum IntervalStop { Close, Comma, End }

        // The interval body is read token by token, as glibc does: a number ends at "\}" or at a ',' (also an escaped
        // one); any other token makes it invalid, and the error then depends on whether "\}" or the end came first.
        private void Interval()
        {
            var min = FetchNumber(out var stop);
            var max = 0;
            if (min == -1)
            {
                if (stop != IntervalStop.Comma)
                    throw Error(10, "empty interval");
                min = 0;
            }
            if (min != -2)
                max = stop == IntervalStop.Close ? min : stop == IntervalStop.Comma ? FetchNumber(out stop) : -2;
            if (min == -2 || max == -2)
                throw stop == IntervalStop.End ? Error(9, "unterminated \\{") : Error(10, "bad interval");
            if ((max != -1 && min > max) || stop != IntervalStop.Close)
                throw Error(10, "bad interval");
            if ((max == -1 ? min : max) > DuplicateMax)
                throw Error(15, "interval count too large");
            Repeat(max == -1 ? $"{{{min},}}" : max == min ? $"{{{min}}}" : $"{{{min},{max}}}", breaksChain: true);
        }

        // Returns -1 when there were no digits, -2 for an invalid number, else the value (capped just above the maximum).
        private int FetchNumber(out IntervalStop stop)
        {
            var num = -1;
            while (true)
            {
                if (_i >= p.Length)
                {
                    stop = IntervalStop.End;
                    return -2;
                }
                char c;
                var plain = true;
                if (p[_i] == '\\' && _i + 1 < p.Length)
                {
                    c = p[_i + 1];
                    plain = false;
                    _i += 2;
                    if (c == '}')
                    {
                        stop = IntervalStop.Close;
                        return num;
                    }
                }
                else
                {
                    c = p[_i++];
                }
                if (c == ',')
                {
                    stop = IntervalStop.Comma;
                    return num;
                }
                num = !plain || c is < '0' or > '9' || num == -2 ? -2
                    : num == -1 ? c - '0'
                    : Math.Min(DuplicateMax + 1, num * 10 + (c - '0'));
            }
        }

        private bool At(char c) => _i < p.Length && p[_i] == c;

        private string Bracket()
        {
            var sb = new StringBuilder("[");
            if (At('^'))
            {
                sb.Append('^');
                _i++;
            }
            var first = true;
            while (true)
            {
                if (_i >= p.Length)
                    throw Error(7, "unterminated [");
                if (p[_i] == ']' && !first)
                {
                    _i++;
                    break;
                }
                var leadingBracket = first && p[_i] == ']';
                first = false;
                var (kind, ch, set) = BracketElement();
                if (kind != ElementKind.Class && At('-') && _i + 1 < p.Length && p[_i + 1] != ']')
                {
                    _i++;
                    var (endKind, endCh, _) = BracketElement();
                    if (kind == ElementKind.Equivalence || endKind != ElementKind.Char || leadingBracket)
                        throw Error(11, "invalid range");
                    var lo = char.ToUpperInvariant(ch);
                    var hi = char.ToUpperInvariant(endCh);
                    if (!char.IsAscii(ch) || !char.IsAscii(endCh))
                        (lo, hi) = (ch, endCh);
                    if (lo > hi)
                        throw Error(11, "invalid range");
                    sb.Append(ClassChar(lo)).Append('-').Append(ClassChar(hi));
                }
                else if (kind == ElementKind.Class)
                {
                    if (At('-') && _i + 1 < p.Length && p[_i + 1] != ']')
                        throw Error(11, "invalid range");
                    sb.Append(set);
                }
                else
                {
                    sb.Append(ClassChar(ch));
                }
            }
            return sb.Append(']').ToString();
        }

        private enum ElementKind { Char, Class, Equivalence }

        private (ElementKind Kind, char Char, string? Set) BracketElement()
        {
            if (p[_i] == '[' && _i + 1 < p.Length && p[_i + 1] is ':' or '.' or '=')
            {
                var delimiter = p[_i + 1];
                var close = p.IndexOf(delimiter + "]", _i + 2, StringComparison.Ordinal);
                if (close < 0)
                    throw Error(7, "unterminated [");
                var name = p[(_i + 2)..close];
                _i = close + 2;
                switch (delimiter)
                {
                    case ':':
                        return (ElementKind.Class, '\0', ClassSet(name) ?? throw Error(4, $"unknown character class '{name}'"));
                    case '.':
                        if (name.Length != 1)
                            throw Error(3, $"unknown collating element '{name}'");
                        return (ElementKind.Char, name[0], null);
                    default:
                        if (name.Length != 1)
                            throw Error(3, $"unknown equivalence class '{name}'");
                        return (ElementKind.Equivalence, name[0], null);
                }
            }
            return (ElementKind.Char, p[_i++], null);
        }

        private static string? ClassSet(string name) => name switch
        {
            "alpha" => "A-Za-z",
            "digit" => "0-9",
            "alnum" => "0-9A-Za-z",
            "upper" => "A-Z",
            "lower" => "a-z",
            "space" => @" \t\n\r\f\v",
            "blank" => @" \t",
            "punct" => @"!-/:-@\[-`{-~",
            "print" => " -~",
            "graph" => "!-~",
            "cntrl" => @"\x00-\x1f\x7f",
            "xdigit" => "0-9A-Fa-f",
            _ => null,
        };

        private static string ClassChar(char c) => $@"\u{(int)c:X4}";

        private static string EscapeChar(char c) =>
            char.IsAsciiLetterOrDigit(c) || c > 127 ? c.ToString() : $@"\u{(int)c:X4}";

        private BrePatternException Error(int code, string what) => new(code, $"invalid pattern '{p}': {what} (code {code})");
    }
}
