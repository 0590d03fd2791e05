// stream.js — the text of one streamed job, as an async iterator that
// follows the run rule of schemas/spec.md.
//
// Reruns: a job can run more than once, and only the run named by the
// terminal reply is the result. The stream follows the newest run: when
// chunks of a new run arrive, or the terminal reply names another run than
// the one being yielded, it yields a StreamRestarted (the run that follows and
// the text that is void) and then that run's text from its beginning. So the
// strings yielded after the last StreamRestarted (or from the start) join up
// to exactly `stream.done.text`.

/** Yielded instead of text when the text yielded so far is void. */
export class StreamRestarted {
  constructor(run, discarded) {
    this.run = run;
    this.discarded = discarded;
  }
}

export class Stream {
  /** The done reply, once the iteration has ended. */
  done = null;
  #chunks = [];
  #wake = null;
  #result = null;
  #outcome = null; // {error} or {done} once the terminal reply came
  #signal;
  #forget = () => {};
  #runs = new Map(); // run -> Map(seq -> text)
  #run = null;
  #nextSeq = 0;
  #yielded = [];

  /** Called by the client's reply consumer for each chunk of this job. */
  push(chunk) {
    this.#chunks.push(chunk);
    this.#notify();
  }

  /** Called by the client once the job is sent. */
  attach(result, signal, forget) {
    this.#signal = signal;
    this.#forget = forget;
    this.#result = result.then(
      (done) => (this.#outcome = { done }),
      (error) => (this.#outcome = { error }),
    );
    this.#result.then(() => this.#notify());
    signal?.addEventListener("abort", () => this.#notify(), { once: true });
  }

  #notify() {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator]() {
    try {
      for (;;) {
        if (this.#chunks.length > 0) {
          yield* this.#onChunk(this.#chunks.shift());
        } else if (this.#outcome) {
          if (this.#outcome.error) throw this.#outcome.error;
          yield* this.#onDone(this.#outcome.done);
          return;
        } else if (this.#signal?.aborted) {
          throw this.#signal.reason;
        } else {
          await new Promise((resolve) => (this.#wake = resolve));
        }
      }
    } finally {
      this.#forget();
    }
  }

  *#switch(run) {
    if (this.#run !== null) yield new StreamRestarted(run, this.#yielded.join(""));
    this.#run = run;
    this.#nextSeq = 0;
    this.#yielded = [];
  }

  *#catchUp() {
    const chunks = this.#runs.get(this.#run);
    while (chunks?.has(this.#nextSeq)) {
      const text = chunks.get(this.#nextSeq++);
      this.#yielded.push(text);
      if (text) yield text;
    }
  }

  *#onChunk(chunk) {
    const isNew = !this.#runs.has(chunk.run);
    if (isNew) this.#runs.set(chunk.run, new Map());
    this.#runs.get(chunk.run).set(chunk.seq, chunk.text);
    if (isNew && chunk.run !== this.#run) yield* this.#switch(chunk.run);
    if (chunk.run === this.#run) yield* this.#catchUp();
  }

  *#onDone(done) {
    if (done.run !== this.#run) yield* this.#switch(done.run);
    yield* this.#catchUp();
    let soFar = this.#yielded.join("");
    if (!done.text.startsWith(soFar)) {
      yield* this.#switch(done.run); // chunks went missing: the done text rules
      soFar = "";
    }
    if (done.text.length > soFar.length) yield done.text.slice(soFar.length);
    this.done = done;
  }
}
