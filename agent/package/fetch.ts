// The agent downloads packages with the verifying fetch it shares with the controller's install-time check.
export { downloadVerified, type ExpectedPackage } from '../../common/package-fetch.js';
