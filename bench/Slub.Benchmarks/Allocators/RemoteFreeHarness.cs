namespace Slub.Benchmarks.Allocators;

/// <summary>
/// Producer/consumer: the benchmark thread allocates, a second thread frees (every free is a remote free).
/// </summary>
/// <remarks>
/// <para>The consumer thread lives for the whole benchmark and sleeps on a semaphore between invocations, so
/// neither thread start-up nor an idle spinning thread is measured (the machine has only 2 cores).</para>
/// <para>Objects pass through a single-producer/single-consumer ring; head and tail sit on separate cache
/// lines. The ring costs the same for every allocator, so the differences in the table are the allocators'.</para>
/// </remarks>
public sealed class RemoteFreeHarness<TAlloc, THandle> : IDisposable
    where TAlloc : struct, IBenchAllocator<THandle>
{
    private const int RingSize = 4096;   // power of two
    private readonly THandle[] _ring = new THandle[RingSize];
    private RingIndices _idx;
    private readonly SemaphoreSlim _go = new(0);
    private readonly Thread _consumer;
    private TAlloc _producerSide;
    private TAlloc _consumerSide;
    private int _batch;
    private volatile bool _stop;

    public RemoteFreeHarness(TAlloc allocator, string name)
    {
        _producerSide = allocator;
        _consumerSide = allocator;
        _consumer = new Thread(ConsumerLoop) { IsBackground = true, Name = "remote-free " + name };
        _consumer.Start();
    }

    /// <summary>Allocates <paramref name="count"/> objects on this thread and returns when the consumer has freed them all.</summary>
    public void Run(int count)
    {
        _batch = count;
        _go.Release();
        long head = _idx.Head;
        var spin = new SpinWait();
        for (int i = 0; i < count; i++)
        {
            THandle obj = _producerSide.Alloc();
            while (head - Volatile.Read(ref _idx.Tail) >= RingSize) spin.SpinOnce(sleep1Threshold: -1);
            _ring[head & (RingSize - 1)] = obj;
            Volatile.Write(ref _idx.Head, ++head);
        }
        while (Volatile.Read(ref _idx.Tail) != head) spin.SpinOnce(sleep1Threshold: -1);
    }

    private void ConsumerLoop()
    {
        while (true)
        {
            _go.Wait();
            if (_stop) return;
            long tail = _idx.Tail, end = tail + _batch;
            var spin = new SpinWait();
            while (tail < end)
            {
                long head = Volatile.Read(ref _idx.Head);
                if (head == tail) { spin.SpinOnce(sleep1Threshold: -1); continue; }
                // Free everything published so far before touching the shared tail again.
                for (; tail < head; tail++)
                {
                    ref THandle slot = ref _ring[tail & (RingSize - 1)];
                    _consumerSide.Free(slot);
                    slot = default!;
                }
                Volatile.Write(ref _idx.Tail, tail);
            }
        }
    }

    public void Dispose()
    {
        _stop = true;
        _go.Release();
        _consumer.Join();
        _go.Dispose();
    }
}
