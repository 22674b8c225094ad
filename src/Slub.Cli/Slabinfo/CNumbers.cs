namespace Slub.Cli.Slabinfo;

/// <summary>The C library's number parsing as slabinfo uses it (atol, strtoul), with C's wrap-around.</summary>
public static class CNumbers
{
    /// <summary>atol(): leading white space, an optional sign, decimal digits; clamps on overflow like strtol.</summary>
    public static long Atol(string s)
    {
        var i = SkipSpace(s, 0);
        var negative = false;
        if (i < s.Length && s[i] is '+' or '-')
            negative = s[i++] == '-';
        ulong value = 0;
        var overflow = false;
        for (; i < s.Length && char.IsAsciiDigit(s[i]); i++)
        {
            var next = unchecked(value * 10 + (ulong)(s[i] - '0'));
            if (value > (ulong.MaxValue - 9) / 10 || next > (ulong)long.MaxValue + 1)
                overflow = true;
            value = next;
        }
        if (overflow || (!negative && value > long.MaxValue))
            return negative ? long.MinValue : long.MaxValue;
        return negative ? unchecked(-(long)value) : (long)value;
    }

    /// <summary>strtoul(): like atol but unsigned (a '-' negates modulo 2^64); returns the index after the number.</summary>
    public static ulong Strtoul(string s, int start, out int end)
    {
        var i = SkipSpace(s, start);
        var negative = false;
        if (i < s.Length && s[i] is '+' or '-')
            negative = s[i++] == '-';
        var digitsStart = i;
        ulong value = 0;
        var overflow = false;
        for (; i < s.Length && char.IsAsciiDigit(s[i]); i++)
        {
            if (value > (ulong.MaxValue - (ulong)(s[i] - '0')) / 10)
                overflow = true;
            value = unchecked(value * 10 + (ulong)(s[i] - '0'));
        }
        if (i == digitsStart)
        {
            end = start;
            return 0;
        }
        end = i;
        if (overflow)
            return ulong.MaxValue;
        return negative ? unchecked(0UL - value) : value;
    }

    private static int SkipSpace(string s, int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t' or '\n' or '\v' or '\f' or '\r')
            i++;
        return i;
    }
}
