using System.Globalization;

namespace Slub.Cli.Slabinfo;

/// <summary>
/// The tool's store_size(): above 1 000 / 1 000 000 / 1 000 000 000 a value is shown in tenths of K / M / G
/// (decimal units), with one truncated decimal digit: 24576 → "24.5K", 5009408 → "5.0M", exactly 1000 → "1000".
/// With -B (bytes) the plain number is printed. The value is unsigned but printed signed, as with %ld.
/// </summary>
public static class SizeFormatter
{
    public static string StoreSize(ulong value, bool bytes)
    {
        ulong divisor = 1;
        char trailer = '\0';
        if (!bytes)
        {
            if (value > 1_000_000_000UL) { divisor = 100_000_000UL; trailer = 'G'; }
            else if (value > 1_000_000UL) { divisor = 100_000UL; trailer = 'M'; }
            else if (value > 1_000UL) { divisor = 100UL; trailer = 'K'; }
        }
        var text = unchecked((long)(value / divisor)).ToString(CultureInfo.InvariantCulture);
        if (trailer == '\0')
            return text;
        // Insert the decimal point before the last digit (the quotient always has at least two digits here).
        return string.Concat(text.AsSpan(0, text.Length - 1), ".", text.AsSpan(text.Length - 1), trailer.ToString());
    }
}
