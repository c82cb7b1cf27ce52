// The drawing pad: white ink on black, like MNIST's digits, drawn with pointer events so
// a mouse, a finger and a pen all work. What it sends is the canvas as a PNG.

const INK = "#fff";
const PAPER = "#000";
const STROKE = 0.075; // of the canvas side: MNIST's strokes, scaled up

export class Pad {
  constructor(canvas, { onStart, onStroke }) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onStart = onStart;
    this.onStroke = onStroke;
    this.blank = true;
    this.last = null;
    this.clear();
    canvas.addEventListener("pointerdown", (event) => this.down(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    canvas.addEventListener("pointerup", (event) => this.up(event));
    canvas.addEventListener("pointercancel", (event) => this.up(event));
  }

  clear() {
    const { context, canvas } = this;
    context.fillStyle = PAPER;
    context.fillRect(0, 0, canvas.width, canvas.height);
    this.blank = true;
  }

  toDataURL() {
    return this.canvas.toDataURL("image/png");
  }

  /** Where the pointer is, in canvas pixels (the canvas is drawn at any CSS size). */
  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * this.canvas.width,
      y: ((event.clientY - box.top) / box.height) * this.canvas.height,
    };
  }

  down(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.onStart?.();
    this.last = this.point(event);
    this.segment(this.last, this.last); // a tap leaves a dot
  }

  move(event) {
    if (this.last === null) return;
    // Coalesced events: every position the pointer passed through, not one per frame.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of events.length ? events : [event]) {
      const next = this.point(each);
      this.segment(this.last, next);
      this.last = next;
    }
  }

  up(event) {
    if (this.last === null) return;
    this.last = null;
    if (this.canvas.hasPointerCapture(event.pointerId)) {
      this.canvas.releasePointerCapture(event.pointerId);
    }
    this.onStroke?.();
  }

  segment(from, to) {
    const { context, canvas } = this;
    context.strokeStyle = INK;
    context.lineWidth = canvas.width * STROKE;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    this.blank = false;
  }
}
