namespace Slub.Tests;

public class GuardedThreadTests
{
    [Fact]
    public void AnExceptionOnTheThreadFailsTheJoinInsteadOfTheProcess()
    {
        var t = new GuardedThread(() => throw new InvalidOperationException("boom on the worker"));
        t.Start();
        var e = Assert.Throws<Xunit.Sdk.XunitException>(() => t.Join());
        Assert.Contains("boom on the worker", e.Message);
    }

    [Fact]
    public void AThreadThatEndsNormallyJoinsQuietly()
    {
        int ran = 0;
        var t = new GuardedThread(() => ran = 1);
        t.Start();
        Assert.True(t.Join(TimeSpan.FromMinutes(1)));
        Assert.Equal(1, ran);
    }
}
