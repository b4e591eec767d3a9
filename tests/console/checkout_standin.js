// Stands in for Razorpay's hosted Checkout (checkout.razorpay.com/v1/checkout.js), which this
// test machine cannot reach. It takes the same options and calls the same handler; its "Pay"
// button asks the test (through a route on checkout.razorpay.com) to pay the order on the local
// server that signs like Razorpay, and hands the console what real Checkout would.
window.Razorpay = class {
  constructor(options) {
    this.options = options;
    this.listeners = {};
  }

  on(event, listener) {
    this.listeners[event] = listener;
  }

  open() {
    const { amount, currency, key, order_id: orderId } = this.options;
    const dialog = document.createElement("dialog");
    dialog.setAttribute("aria-label", "Razorpay Checkout");
    const pay = document.createElement("button");
    pay.textContent = `Pay ${amount / 100} ${currency}`;
    const close = document.createElement("button");
    close.textContent = "Close";
    pay.addEventListener("click", async () => {
      const query = new URLSearchParams({ order_id: orderId, key });
      const answer = await (await fetch(`https://checkout.razorpay.com/stand-in/pay?${query}`)).json();
      dialog.close();
      dialog.remove();
      this.options.handler(answer);
    });
    close.addEventListener("click", () => {
      dialog.close();
      dialog.remove();
      this.options.modal?.ondismiss?.();
    });
    dialog.append(pay, close);
    document.body.append(dialog);
    dialog.showModal();
  }
};
