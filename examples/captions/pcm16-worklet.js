// The microphone as 24 kHz PCM16, in 20 ms blocks: what a realtime session takes.
// The AudioContext runs at 24 kHz, so the browser resamples; this only converts.
class PCM16 extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Int16Array(480);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        const s = Math.max(-1, Math.min(1, channel[i]));
        this.block[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        if (this.filled === this.block.length) {
          this.port.postMessage(this.block.buffer, [this.block.buffer]);
          this.block = new Int16Array(480);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm16", PCM16);
