using System.Globalization;

namespace Slub.Cli.Slabinfo;

/// <summary>printf field helpers: right-aligned numbers and strings (<c>%8ld</c>, <c>%15s</c>), left-aligned (<c>%-21s</c>).</summary>
internal static class CFormat
{
    public static string Num(long value, int width = 0) => value.ToString(CultureInfo.InvariantCulture).PadLeft(width);

    public static string UNum(ulong value, int width = 0) => value.ToString(CultureInfo.InvariantCulture).PadLeft(width);

    public static string Right(string s, int width) => s.PadLeft(width);

    public static string Left(string s, int width) => s.PadRight(width);
}
