using Slub.XArray;

namespace Slub.Tests.XArray;

/// <summary>Argument exceptions of the entry constructors name the parameter the caller passed.</summary>
public class XaEntryArgumentTests
{
    [Fact]
    public void AValueTooLargeNamesTheValueParameter()
    {
        // The throw helper's own parameter was named "v", so ParamName named nothing in the public signature.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => XaEntry.FromValue(ulong.MaxValue));
        Assert.Equal("value", e.ParamName);
        Assert.Equal(ulong.MaxValue, e.ActualValue);
        Assert.Equal(long.MaxValue, (long)XaEntry.FromValue(long.MaxValue).Value);
    }

    [Fact]
    public void AnUnalignedPointerNamesThePointerParameter()
    {
        var e = Assert.Throws<ArgumentException>(() => XaEntry.FromPointer(6));
        Assert.Equal("pointer", e.ParamName);
    }
}
