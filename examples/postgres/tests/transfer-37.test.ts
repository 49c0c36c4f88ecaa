import { transferScenario } from './scenarios.js';

transferScenario(370);
