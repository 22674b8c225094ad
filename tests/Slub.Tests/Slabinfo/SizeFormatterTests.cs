using System.Globalization;
using CsCheck;
using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

public class SizeFormatterTests
{
    [Theory]
    [InlineData(0UL, "0")]
    [InlineData(999UL, "999")]
    [InlineData(1000UL, "1000")]
    [InlineData(1001UL, "1.0K")]
    [InlineData(24576UL, "24.5K")]
    [InlineData(618496UL, "618.4K")]
    [InlineData(1000000UL, "1000.0K")]
    [InlineData(1000001UL, "1.0M")]
    [InlineData(5009408UL, "5.0M")]
    [InlineData(1000000001UL, "1.0G")]
    [InlineData(123456789012UL, "123.4G")]
    [InlineData(ulong.MaxValue, "18446744073.7G")]
    public void ScalesInDecimalTenthsAndTruncates(ulong value, string expected)
    {
        Assert.Equal(expected, SizeFormatter.StoreSize(value, bytes: false));
    }

    [Fact]
    public void BytesModePrintsTheUnsignedValueAsSigned()
    {
        Assert.Equal("24576", SizeFormatter.StoreSize(24576, bytes: true));
        Assert.Equal("-1", SizeFormatter.StoreSize(ulong.MaxValue, bytes: true)); // %ld of a wrapped value
    }

    [Fact]
    public void ScaledValueIsTheTruncatedQuotientWithOneDecimal()
    {
        Gen.ULong[1001, 10_000_000_000_000].Sample(v =>
        {
            var text = SizeFormatter.StoreSize(v, bytes: false);
            var (divisor, unit) = v > 1_000_000_000 ? (1e9, 'G') : v > 1_000_000 ? (1e6, 'M') : (1e3, 'K');
            var expected = Math.Floor(v / divisor * 10 + 1e-9) / 10; // one decimal, truncated
            return text[^1] == unit &&
                   Math.Abs(double.Parse(text[..^1], CultureInfo.InvariantCulture) - expected) < 0.11 &&
                   text[..^1].Split('.')[1].Length == 1;
        });
    }
}
