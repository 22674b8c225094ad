using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Slub.Cli;

/// <summary>
/// Number options of the <c>slub</c> subcommands, each with a <see cref="Option{T}.CustomParser"/> that checks the word
/// and the range in one place. A word that is not a number, does not fit, or is out of range is a parse error in plain
/// words — "--cpus must be a whole number in 1..4096, not 'x'" — instead of System.CommandLine's own
/// "as expected type 'System.Nullable`1[System.Int32]'"; like every parse error it prints the usage and exits 1.
/// An option left out takes its default (or null) without being parsed.
/// </summary>
internal static class NumberOptions
{
    /// <summary>A whole-number option in <paramref name="min"/>..<paramref name="max"/> (and a multiple of <paramref name="multipleOf"/>).</summary>
    public static Option<int> Int(string name, string description, int defaultValue, int min = int.MinValue, int max = int.MaxValue, int multipleOf = 1)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.CustomParser = r => ParseInt(r, name, min, max, multipleOf) ?? defaultValue;
        return option;
    }

    /// <summary>A whole-number option in <paramref name="min"/>..<paramref name="max"/> that is null when left out.</summary>
    public static Option<int?> NullableInt(string name, string description, int min, int max)
    {
        var option = new Option<int?>(name) { Description = description };
        option.CustomParser = r => ParseInt(r, name, min, max, 1);
        return option;
    }

    /// <summary>A number option in (<paramref name="exclusiveMin"/>, <paramref name="max"/>].</summary>
    public static Option<double> Double(string name, string description, double defaultValue, double exclusiveMin, double max)
    {
        var option = new Option<double>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.CustomParser = r =>
        {
            if (Word(r) is not string word) return defaultValue;
            if (double.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
                && double.IsFinite(value) && value > exclusiveMin && value <= max)
                return value;
            r.AddError($"{name} must be a number in ({Format(exclusiveMin)}, {Format(max)}], not '{word}'");
            return defaultValue;
        };
        return option;
    }

    private static int? ParseInt(ArgumentResult r, string name, int min, int max, int multipleOf)
    {
        if (Word(r) is not string word) return null;
        if (int.TryParse(word, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value)
            && value >= min && value <= max && value % multipleOf == 0)
            return value;
        string what = multipleOf == 1 ? "a whole number" : $"a multiple of {multipleOf.ToString(CultureInfo.InvariantCulture)}";
        r.AddError($"{name} must be {what} in {min.ToString(CultureInfo.InvariantCulture)}..{max.ToString(CultureInfo.InvariantCulture)}, not '{word}'");
        return null;
    }

    /// <summary>The option's one word; null when there is none (the parser reports a missing value itself).</summary>
    private static string? Word(ArgumentResult r) => r.Tokens.Count == 1 ? r.Tokens[0].Value : null;

    private static string Format(double d) => d.ToString(CultureInfo.InvariantCulture);
}
