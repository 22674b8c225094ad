using System.Globalization;

namespace Slub.Cli;

/// <summary>Counts with their noun for the CLI's own messages: "1 page", "2 pages", "2,292 pages".</summary>
internal static class Plural
{
    /// <summary><paramref name="n"/> (grouped by thousands) and the noun, singular for exactly 1.</summary>
    public static string Count(long n, string singular, string? plural = null) =>
        $"{n.ToString("N0", CultureInfo.InvariantCulture)} {Noun(n, singular, plural)}";

    /// <summary>The noun alone: <paramref name="singular"/> for exactly 1, else <paramref name="plural"/> (default: singular + "s").</summary>
    public static string Noun(long n, string singular, string? plural = null) => n == 1 ? singular : plural ?? singular + "s";
}
