"""Buying credit packs with Razorpay: orders, checkout verification, webhooks, refunds."""
